// Rule R8: arithmetic on an element of a write-only view reads it (w[i] * 2), like any read.
// expect-error: arithmetic, a comparison, a compound assignment.*on an element of a write-only view reads the element.*\(rule R8\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::upload_buffer<float, unibuf::host_backend> buf(dev, 4);
    auto w = buf.view();
    const float host[4] = {1, 2, 3, 4};
#ifdef UNIBUF_COMPILE_FAIL
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = w[i] * 2;
#else
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = host[i] * 2;
#endif
    (void)host;
}
