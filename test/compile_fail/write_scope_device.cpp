// Rule R7: a placement::device buffer has no host view, so no write scope either.
// expect-error: placement::device memory is not host-visible, so it has no host view or write scope.*\(rule R7\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::device_buffer<int, unibuf::host_backend> buf(dev, 4);
#ifdef UNIBUF_COMPILE_FAIL
    auto w = buf.write_scope();
    w[0] = 1;
#else
    buf.fill(1);
#endif
}
