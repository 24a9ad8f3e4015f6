// The core target: an upload through a write scope, a kernel on the host backend, a read back.
#include <unibuf/unibuf.hpp>

#include <cstdio>
#include <vector>

int main() {
    unibuf::host_backend dev;
    unibuf::upload_buffer<float, unibuf::host_backend> up(dev, 256);
    {
        auto w = up.write_scope();
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
    }
    unibuf::device_buffer<float, unibuf::host_backend> d(dev, 256);
    d.copy_from(up);
    unibuf::host_kernel twice = [](const unibuf::host_invocation& in) {
        for (float& x : in.as<float>(0)) x *= 2;
    };
    unibuf::dispatch(dev, twice, {1}, {}, unibuf::bind(d, unibuf::usage::read_write));
    const std::vector<float> v = d.to_vector();
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != 2.0f * static_cast<float>(i)) {
            std::fprintf(stderr, "unibuf::unibuf: element %zu = %g, expected %g\n", i, double(v[i]), 2.0 * double(i));
            return 1;
        }
    }
    std::printf("unibuf::unibuf: ok (%zu floats doubled on the host backend)\n", v.size());
    return 0;
}
