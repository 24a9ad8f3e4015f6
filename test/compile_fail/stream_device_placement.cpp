// Rule R18: upload_stream writes through a host mapping, which placement::device memory has not;
// one error names the rule (no cascade from the ring's buffer type).
// expect-error: upload_stream writes through a host mapping; placement::device has none.*\(rule R18\)
#include <unibuf/transfer/upload_stream.hpp>
#include <unibuf/unibuf.hpp>

#ifdef UNIBUF_COMPILE_FAIL
using where = unibuf::placement::device;
#else
using where = unibuf::placement::device_mapped;
#endif

void use(unibuf::host_backend& dev) {
    unibuf::upload_stream<unibuf::host_backend, unibuf::coherence::write_combined, where> up(dev, 4096, 3);
    auto blk = up.push<float>(16);
    blk.view()[0] = 1.0f;
}
