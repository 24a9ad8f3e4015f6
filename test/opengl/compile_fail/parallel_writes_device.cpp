// Rule R7: gl_parallel_writes writes through the host mapping, which placement::device buffers do
// not have; the rule is the only error (no cascade from the members that use the mapping).
// expect-error: gl_parallel_writes writes through the host mapping, which placement::device buffers do not have \(rule R7\)
#include <unibuf/opengl.hpp>
#include <unibuf/unibuf.hpp>

#ifdef UNIBUF_COMPILE_FAIL
using buf = unibuf::device_buffer<float, unibuf::gl_backend>;
#else
using buf = unibuf::shared_buffer<float, unibuf::gl_backend>;
#endif

void use(buf& b) {
    unibuf::gl_parallel_writes<buf> batch(b);
    auto c = batch.acquire(0, 4);
    c.view()[0] = 1.0f;
    c.publish();
    batch.finish();
}
