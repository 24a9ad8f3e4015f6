// unibuf-policies: how the four policies compose into buffers, and what each combination does.
//
// Runs on the host backend (a CPU "device" with its own memory), so it works on any machine:
// it prints, for the common buffer types, the policies, the memory the backend chose and why, the
// host view the access policy gives, then walks a lazily synchronized buffer through real device
// work (its input written through a write scope) and prints every state transition.
#include <unibuf/unibuf.hpp>

#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

template <class Buf>
std::string_view view_kind() {
    if constexpr (!Buf::host_viewable) return "none (staged: write/read/to_vector)";
    else if constexpr (Buf::host_readable && Buf::host_writable) return "std::span<T>";
    else if constexpr (Buf::host_readable) return "std::span<const T>";
    else return "write_only_view<T>";
}

template <class Buf>
void describe(const char* title, unibuf::host_backend& dev, const char* meaning) {
    Buf b(dev, 1024);
    const auto& r = b.report();
    std::printf("%s\n  policies : %.*s, %.*s, %.*s, %.*s\n", title,
                static_cast<int>(Buf::access_policy::name.size()), Buf::access_policy::name.data(),
                static_cast<int>(Buf::coherence_policy::name.size()), Buf::coherence_policy::name.data(),
                static_cast<int>(Buf::placement_policy::name.size()), Buf::placement_policy::name.data(),
                static_cast<int>(Buf::sync_policy::name.size()), Buf::sync_policy::name.data());
    const auto vk = view_kind<Buf>();
    std::printf("  host view: %.*s\n  memory   : %s, %s, %s\n  why      : %s\n  meaning  : %s\n",
                static_cast<int>(vk.size()), vk.data(), std::string(unibuf::to_string(r.chosen)).c_str(),
                r.zero_copy ? "zero-copy" : "staged", r.host_coherent ? "coherent" : "needs flush/invalidate",
                r.reason.c_str(), meaning);
    for (const auto& f : r.fallbacks) std::printf("  fallback : %s\n", f.c_str());
    std::printf("\n");
}

struct saxpy_params {
    float a;
    std::uint32_t n;
};

} // namespace

int main() {
    using namespace unibuf;
    host_backend dev;

    std::printf("== unibuf: policies compose into buffer types (backend: %s) ==\n\n",
                std::string(dev.name()).c_str());
    describe<upload_buffer<float, host_backend>>(
        "upload_buffer<float>", dev,
        "streaming host writes; may be write-combined, so reading it does not compile");
    describe<readback_buffer<float, host_backend>>(
        "readback_buffer<float>", dev, "device results read by the host from cached system memory");
    describe<shared_buffer<float, host_backend>>(
        "shared_buffer<float>", dev, "both sides read and write; flushes/copies happen lazily on access");
    describe<device_buffer<float, host_backend>>(
        "device_buffer<float>", dev, "device-local; the host reaches it only through staged named calls");
    describe<basic_buffer<float, host_backend, coherence::explicit_flush, placement::host, sync::none>>(
        "basic_buffer<float, explicit_flush, host, none>", dev,
        "the caller flushes host writes and invalidates before reading device writes (rounded to the atom)");

    std::printf("== a lazily synchronized device buffer through real (CPU) device work ==\n");
    device_buffer<float, host_backend> y(dev, 256);
    readback_buffer<float, host_backend> check(dev, 256);
    basic_buffer<float, host_backend, placement::host, sync::fenced> x(dev, 256);
    {
        auto w = x.write_scope();  // host writes through a view; flushed / staged when w ends
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = 2.0f;
    }
    host_kernel saxpy = [](const host_invocation& in) {
        const auto p = in.params<saxpy_params>();
        auto xs = in.as<const float>(0);
        auto ys = in.as<float>(1);
        for (std::uint32_t i = 0; i < p.n; ++i) ys[i] = p.a * xs[i] + ys[i];
    };
    auto show = [&](const char* step) {
        const auto s = to_string(y.state());
        std::printf("  %-44s -> %.*s\n", step, static_cast<int>(s.size()), s.data());
    };
    show("allocated");
    y.fill(1.0f);
    show("fill(1) on the host");
    const saxpy_params p{3.0f, 256};
    dispatch(dev, saxpy, {4, 1, 1}, push_constants(p), bind(x, usage::read), bind(y, usage::read_write));
    show("dispatch y = 3x + y (staged copy first)");
    const auto v = y.to_vector();
    show("to_vector() (wait, copy back)");
    std::printf("  y[0] = %.1f, y[255] = %.1f (expected 7.0)\n", static_cast<double>(v[0]),
                static_cast<double>(v[255]));
    check.copy_from(y);
    const bool ok = v[0] == 7.0f && v[255] == 7.0f && check.to_vector() == v;
    std::printf("\n%s\n", ok ? "OK: every path agreed" : "MISMATCH");
    return ok ? 0 : 1;
}
