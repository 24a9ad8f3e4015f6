// Uses unibuf added with add_subdirectory: a streaming upload through a write-only view, a
// device-side copy into a readback buffer, and the read back. Exits non-zero on any wrong value.
#include <unibuf/unibuf.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
    unibuf::host_backend dev;
    constexpr std::size_t n = 4096;

    unibuf::upload_buffer<std::uint32_t, unibuf::host_backend> up(dev, n);
    auto v = up.view();  // write_only_view: stores only
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint32_t>(i * 2654435761u);
    up.flush();

    unibuf::readback_buffer<std::uint32_t, unibuf::host_backend> down(dev, n);
    down.copy_from(up);
    const std::vector<std::uint32_t> got = down.to_vector();  // waits for the copy
    for (std::size_t i = 0; i < n; ++i) {
        const auto want = static_cast<std::uint32_t>(i * 2654435761u);
        if (got[i] != want) {
            std::fprintf(stderr, "add_subdirectory consumer: element %zu = %u, expected %u\n", i, got[i], want);
            return 1;
        }
    }
    std::printf("add_subdirectory consumer: ok (%zu elements via %s)\n", n, up.report().reason.c_str());
    return 0;
}
