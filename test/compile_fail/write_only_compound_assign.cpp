// Rule R8: a compound assignment to an element of a write-only view (w[i] += 1) reads it first.
// expect-error: arithmetic, a comparison, a compound assignment.*on an element of a write-only view reads the element.*\(rule R8\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::upload_buffer<int, unibuf::host_backend> buf(dev, 4);
    auto w = buf.view();
#ifdef UNIBUF_COMPILE_FAIL
    w[1] += 1;
#else
    w[1] = 1;
#endif
}
