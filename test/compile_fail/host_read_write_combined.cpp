// Rule R4: coherence::write_combined with an access mode whose host reads (read_write).
// expect-error: coherence::write_combined memory must never be read by the host.*\(rule R4\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::read_write, unibuf::coherence::write_combined> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::write_only, unibuf::coherence::write_combined> buf(dev, 4);
#endif
    buf.fill(1);
}
