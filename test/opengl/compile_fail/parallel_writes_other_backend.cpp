// Rule R17: a batch of writer threads fills only buffers of its own backend: gl_parallel_writes
// takes a buffer of the OpenGL backend; one of another backend is rejected in one error.
// expect-error: gl_parallel_writes is for buffers of the OpenGL backend \(gl_backend\).*\(rule R17\)
#include <unibuf/opengl.hpp>
#include <unibuf/unibuf.hpp>

#ifdef UNIBUF_COMPILE_FAIL
using buf = unibuf::basic_buffer<float, unibuf::host_backend, unibuf::placement::host, unibuf::sync::fenced>;
#else
using buf = unibuf::basic_buffer<float, unibuf::gl_backend, unibuf::placement::host, unibuf::sync::fenced>;
#endif

void use(buf& b) {
    unibuf::gl_parallel_writes<buf> batch(b);
    auto c = batch.acquire(0, 4);
    c.view()[0] = 1.0f;
    c.publish();
    batch.finish();
}
