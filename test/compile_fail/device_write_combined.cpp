// Rule R6: placement::device with coherence::write_combined, even when the host only writes.
// expect-error: placement::device has no host mapping whose coherence could be chosen.*\(rule R6\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::write_only, unibuf::placement::device, unibuf::coherence::write_combined> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::write_only, unibuf::placement::device> buf(dev, 4);
#endif
    (void)buf.size();
}
