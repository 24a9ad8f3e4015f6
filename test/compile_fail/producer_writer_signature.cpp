// Rule R19: producer::fill calls its writer function as fn(write_only_view<T> out, std::size_t
// first); a function that cannot be called so is rejected with the rule, not deep in the threads.
// expect-error: producer::fill calls its writer function as fn\(unibuf::write_only_view<T> out, std::size_t first\).*\(rule R19\)
#include <unibuf/unibuf.hpp>

#include <cstddef>
#include <span>

void use(unibuf::host_backend& dev) {
    unibuf::producer<unibuf::host_backend> prod(dev, 2);
    unibuf::upload_buffer<float, unibuf::host_backend> buf(dev, 100);
#ifdef UNIBUF_COMPILE_FAIL
    (void)prod.fill(buf, [](std::span<float> out) {  // no `first`, and a span is not a write-only view
        for (float& x : out) x = 1.0f;
    });
#else
    (void)prod.fill(buf, [](unibuf::write_only_view<float> out, std::size_t) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = 1.0f;
    });
#endif
}
