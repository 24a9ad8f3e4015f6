// Rule R17: producer::fill takes a unibuf buffer (basic_buffer or a pool slice); a container of
// another kind is rejected with the rule.
// expect-error: producer::fill takes a unibuf buffer \(basic_buffer or a pool slice\) of the producer's backend \(rule R17\)
#include <unibuf/unibuf.hpp>

#include <cstddef>
#include <vector>

void use(unibuf::host_backend& dev) {
    unibuf::producer<unibuf::host_backend> prod(dev, 2);
#ifdef UNIBUF_COMPILE_FAIL
    std::vector<float> buf(100);
#else
    unibuf::upload_buffer<float, unibuf::host_backend> buf(dev, 100);
#endif
    (void)prod.fill(buf, [](unibuf::write_only_view<float> out, std::size_t first) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(first + i);
    });
}
