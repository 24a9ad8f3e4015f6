// The Vulkan target: a device, an upload, a device-side copy into device memory and a read back.
#include <unibuf/vulkan.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

int main() try {
    unibuf::vulkan_backend gpu{unibuf::vulkan_context{}};
    constexpr std::size_t n = 4096;
    unibuf::upload_buffer<std::uint32_t, unibuf::vulkan_backend> up(gpu, n);
    {
        auto w = up.write_scope();
        for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<std::uint32_t>(i * 7u);
    }
    unibuf::device_buffer<std::uint32_t, unibuf::vulkan_backend> d(gpu, n);
    d.copy_from(up);
    const std::vector<std::uint32_t> v = d.to_vector();
    for (std::size_t i = 0; i < n; ++i) {
        if (v[i] != i * 7u) {
            std::fprintf(stderr, "unibuf::vulkan: element %zu = %u, expected %zu\n", i, v[i], i * 7u);
            return 1;
        }
    }
    std::printf("unibuf::vulkan: ok (%zu elements through %s: %s)\n", n, up.report().reason.c_str(),
                d.report().reason.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "unibuf::vulkan: %s\n", e.what());
    return 1;
}
