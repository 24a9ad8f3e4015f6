// The host backend's environment for the shared behaviour suites.
#pragma once

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace unibuf_test {

/// Host environment: the CPU backend with its non-coherent simulation on, and a C++ saxpy with
/// the semantics of include/unibuf/ops/saxpy/saxpy.comp (64 invocations per group, i < n guard).
struct host_env {
    using backend = unibuf::host_backend;
    static constexpr const char* name = "host";
    static backend& get() {
        static backend b;
        return b;
    }
    static unibuf::host_kernel& saxpy() {
        static unibuf::host_kernel k = [](const unibuf::host_invocation& in) {
            struct params {
                float a;
                std::uint32_t n;
            };
            const auto p = in.params<params>();
            auto x = in.as<const float>(0);
            auto y = in.as<float>(1);
            const std::uint64_t invocations = std::uint64_t{in.groups.x} * 64;
            for (std::uint64_t i = 0; i < invocations && i < p.n; ++i) y[i] = p.a * x[i] + y[i];
        };
        return k;
    }
    static void expect_clean() {
        // The host backend reports device-side failures (a job that threw) here.
        EXPECT_TRUE(get().device_error().empty()) << get().device_error();
    }
};

} // namespace unibuf_test
