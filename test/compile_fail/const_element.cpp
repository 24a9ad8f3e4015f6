// Rule R1: a const element type (the buffer is written by the device and by copies).
// expect-error: element type must be a trivially copyable, non-const.*\(rule R1\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::readback_buffer<const int, unibuf::host_backend> buf(dev, 4);
#else
    unibuf::readback_buffer<int, unibuf::host_backend> buf(dev, 4);
#endif
    (void)buf.size();
}
