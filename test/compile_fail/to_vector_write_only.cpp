// Rule R8: to_vector() of an access::write_only buffer.
// expect-error: to_vector\(\) on an access::write_only buffer \(rule R8\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::upload_buffer<int, unibuf::host_backend> buf(dev, 4);
#ifdef UNIBUF_COMPILE_FAIL
    (void)buf.to_vector();
#else
    buf.fill(1);
#endif
}
