// Rule R8: copying one element of a write_only_view to another reads the source element (a deleted
// operator=, so the compiler names no rule).
// expect-error: deleted (function|operator)
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
