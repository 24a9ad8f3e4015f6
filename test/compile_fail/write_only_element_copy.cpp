// Rule R8: copying one element of a write_only_view to another (w[1] = w[0]) reads the source
// element; rejected with the rule's message, not as a bare deleted function.
// expect-error: assigning one element of a write-only view to another.*\(rule R8\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::upload_buffer<int, unibuf::host_backend> buf(dev, 4);
    auto v = buf.view();
#ifdef UNIBUF_COMPILE_FAIL
    v[1] = v[0];
#else
    v[1] = 0;
#endif
}
