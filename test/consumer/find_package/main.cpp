// Uses an installed unibuf: a device-placed buffer on the host backend, a kernel, a readback,
// and the error path. Exits non-zero on any wrong value.
#include <unibuf/unibuf.hpp>

#include <cstdio>
#include <system_error>
#include <vector>

int main() {
    unibuf::host_backend dev;

    // y = a * x + y through staged (device-placed) buffers.
    constexpr std::size_t n = 1000;
    unibuf::device_buffer<float, unibuf::host_backend> x(dev, n);
    unibuf::device_buffer<float, unibuf::host_backend> y(dev, n);
    std::vector<float> xs(n), ys(n);
    for (std::size_t i = 0; i < n; ++i) {
        xs[i] = static_cast<float>(i);
        ys[i] = 1.0f;
    }
    x.write(xs);
    y.write(ys);
    struct params {
        float a;
    };
    unibuf::host_kernel saxpy = [](const unibuf::host_invocation& in) {
        const auto a = in.params<params>().a;
        auto xv = in.as<float>(0);
        auto yv = in.as<float>(1);
        for (std::size_t i = 0; i < yv.size(); ++i) yv[i] = a * xv[i] + yv[i];
    };
    const params p{3.0f};
    unibuf::dispatch(dev, saxpy, {1}, unibuf::push_constants(p), unibuf::bind(x, unibuf::usage::read),
                           unibuf::bind(y, unibuf::usage::read_write));
    const std::vector<float> out = y.to_vector();
    for (std::size_t i = 0; i < n; ++i) {
        const float want = 3.0f * static_cast<float>(i) + 1.0f;
        if (out[i] != want) {
            std::fprintf(stderr, "find_package consumer: y[%zu] = %g, expected %g\n", i, double(out[i]), double(want));
            return 1;
        }
    }

    // A zero-sized buffer is refused with unibuf's error code.
    std::error_code ec;
    auto none = unibuf::readback_buffer<float, unibuf::host_backend>::try_create(dev, 0, ec);
    if (none.has_value() || ec != unibuf::errc::invalid_argument) {
        std::fprintf(stderr, "find_package consumer: a 0-element buffer gave '%s', expected invalid argument\n",
                     ec.message().c_str());
        return 1;
    }
    std::printf("find_package consumer: ok (%zu elements, y[%zu] = %g)\n", n, n - 1, double(out[n - 1]));
    return 0;
}
