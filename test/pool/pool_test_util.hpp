// Small helpers shared by the pool and ring tests (expect_error: test/common/expect_error.hpp).
#pragma once

#include "../common/expect_error.hpp"

#include <unibuf/core/error.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <system_error>

namespace unibuf_test {

/// Deterministic pseudo-random numbers (xorshift64*), so failures replay.
struct rng64 {
    std::uint64_t s;
    explicit rng64(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
    std::uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1Dull;
    }
    /// Uniform-ish in [lo, hi].
    std::uint64_t in(std::uint64_t lo, std::uint64_t hi) { return lo + next() % (hi - lo + 1); }
};

} // namespace unibuf_test
