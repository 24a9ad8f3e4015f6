// Rule R2: two different access policies in one policy list.
// expect-error: conflicting policies: two different policies of one category.*\(rule R2\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::read_only, unibuf::access::write_only> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::read_only> buf(dev, 4);
#endif
    (void)buf.size();
}
