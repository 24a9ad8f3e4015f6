// Rule R18: upload_stream's policy arguments are a coherence policy, then a placement policy; an
// argument of another category is rejected with the rule, in one error.
// expect-error: upload_stream's third argument must be a placement policy with a host mapping.*\(rule R18\)
#include <unibuf/transfer/upload_stream.hpp>
#include <unibuf/unibuf.hpp>

#ifdef UNIBUF_COMPILE_FAIL
using where = unibuf::sync::fenced;  // a policy, but of the wrong category
#else
using where = unibuf::placement::host;
#endif

void use(unibuf::host_backend& dev) {
    unibuf::upload_stream<unibuf::host_backend, unibuf::coherence::coherent, where> up(dev, 4096, 3);
    auto blk = up.push<float>(16);
    blk.view()[0] = 1.0f;
}
