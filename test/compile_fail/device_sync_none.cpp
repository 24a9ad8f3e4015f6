// Rule R5: placement::device with sync::none (its staged host access must be ordered).
// expect-error: placement::device has no host mapping: host access is a staging copy.*\(rule R5\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::placement::device, unibuf::sync::none> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::placement::device, unibuf::sync::fenced> buf(dev, 4);
#endif
    (void)buf.size();
}
