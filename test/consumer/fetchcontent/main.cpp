// Uses unibuf brought in by FetchContent: a lazily synchronized buffer written on the host, doubled
// by a host-backend kernel and read back. Exits non-zero on any wrong value.
#include <unibuf/unibuf.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

int main() {
    unibuf::host_backend dev;
    constexpr std::size_t n = 2048;
    unibuf::shared_buffer<std::int32_t, unibuf::host_backend> b(dev, n);
    std::vector<std::int32_t> in(n);
    for (std::size_t i = 0; i < n; ++i) in[i] = static_cast<std::int32_t>(i) - 1000;
    b.write(in);
    unibuf::host_kernel twice = [](const unibuf::host_invocation& inv) {
        for (std::int32_t& x : inv.as<std::int32_t>(0)) x *= 2;
    };
    unibuf::dispatch(dev, twice, {1}, {}, unibuf::bind(b, unibuf::usage::read_write));
    const std::vector<std::int32_t> out = b.to_vector();
    for (std::size_t i = 0; i < n; ++i) {
        if (out[i] != 2 * in[i]) {
            std::fprintf(stderr, "fetchcontent consumer: element %zu = %d, expected %d\n", i, out[i], 2 * in[i]);
            return 1;
        }
    }
    std::printf("fetchcontent consumer: ok (%zu elements, state %s)\n", n,
                std::string(unibuf::to_string(b.state())).c_str());
    return 0;
}
