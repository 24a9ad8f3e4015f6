// Rule R8: fill() of an access::read_only buffer.
// expect-error: fill\(\) on an access::read_only buffer \(rule R8\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::read_only> buf(dev, 4);
#ifdef UNIBUF_COMPILE_FAIL
    buf.fill(1);
#else
    (void)buf.to_vector();
#endif
}
