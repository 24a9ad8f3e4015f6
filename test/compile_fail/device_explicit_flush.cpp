// Rule R6: placement::device with coherence::explicit_flush (there is no mapping to flush).
// expect-error: placement::device has no host mapping whose coherence could be chosen.*\(rule R6\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::placement::device, unibuf::coherence::explicit_flush> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::placement::device, unibuf::coherence::coherent> buf(dev, 4);
#endif
    (void)buf.size();
}
