// Rule R8: producer::fill writes the buffer; an access::read_only buffer is rejected with the rule.
// expect-error: producer::fill writes the buffer, but its access policy is access::read_only \(rule R8\)
#include <unibuf/unibuf.hpp>

#include <cstddef>

void use(unibuf::host_backend& dev) {
    unibuf::producer<unibuf::host_backend> prod(dev, 2);
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::readback_buffer<float, unibuf::host_backend> buf(dev, 100);
#else
    unibuf::shared_buffer<float, unibuf::host_backend> buf(dev, 100);
#endif
    (void)prod.fill(buf, [](unibuf::write_only_view<float> out, std::size_t) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = 1.0f;
    });
}
