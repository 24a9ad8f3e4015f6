// Rule R17: a producer<B> fills only buffers of its own backend type B; a buffer of another
// backend is rejected at compile time with the rule, not with an overload error.
// expect-error: producer<B>::fill: the buffer lives on another backend type than the producer's.*\(rule R17\)
#include <unibuf/unibuf.hpp>

#include <cstddef>

// A second backend type (a host backend by another name).
struct other_backend : unibuf::host_backend {
    using host_backend::host_backend;
};

void use(unibuf::host_backend& dev, other_backend& other) {
    unibuf::producer<unibuf::host_backend> prod(dev, 2);
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::upload_buffer<float, other_backend> buf(other, 100);
#else
    (void)other;
    unibuf::upload_buffer<float, unibuf::host_backend> buf(dev, 100);
#endif
    (void)prod.fill(buf, [](unibuf::write_only_view<float> out, std::size_t first) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(first + i);
    });
}
