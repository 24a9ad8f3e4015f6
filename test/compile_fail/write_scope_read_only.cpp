// Rule R8: a write scope of an access::read_only buffer.
// expect-error: write_scope\(\) on a buffer whose access policy is access::read_only.*\(rule R8\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::readback_buffer<int, unibuf::host_backend> buf(dev, 4);
#ifdef UNIBUF_COMPILE_FAIL
    auto w = buf.write_scope();
    w[0] = 1;
#else
    (void)buf.const_view();
#endif
}
