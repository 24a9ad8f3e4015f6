// Rule R7: a placement::device buffer has no host pointer.
// expect-error: placement::device memory is not host-visible, so it has no host pointer.*\(rule R7\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::device_buffer<int, unibuf::host_backend> buf(dev, 4);
#ifdef UNIBUF_COMPILE_FAIL
    int* p = buf.data();
    *p = 1;
#else
    const int one = 1;
    buf.write({&one, 1});
#endif
}
