// Rule R8: reading an element of the write_only_view of an access::write_only buffer.
// expect-error: reading an element of a write-only view.*\(rule R8\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::upload_buffer<int, unibuf::host_backend> buf(dev, 4);
    auto v = buf.view();
#ifdef UNIBUF_COMPILE_FAIL
    int x = v[0];
    v[1] = x;
#else
    int x = 5;
    v[1] = x;
#endif
}
