// Rule R2: two different placement policies in one policy list (given apart).
// expect-error: conflicting policies: two different policies of one category.*\(rule R2\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::placement::host, unibuf::sync::lazy, unibuf::placement::device_mapped> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::placement::host, unibuf::sync::lazy> buf(dev, 4);
#endif
    (void)buf.size();
}
