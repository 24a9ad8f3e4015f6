// Small helpers shared by the pool and ring tests.
#pragma once

#include <unibuf/error.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <system_error>

namespace unibuf_test {

/// Runs `f`, expects a std::system_error with `code` whose message contains every string of `parts`.
template <class F>
void expect_error(F&& f, unibuf::errc code, std::initializer_list<const char*> parts) {
#if UNIBUF_EXCEPTIONS
    try {
        f();
        ADD_FAILURE() << "expected std::system_error '" << unibuf::make_error_code(code).message() << "', got none";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), unibuf::make_error_code(code)) << e.what();
        const std::string what = e.what();
        for (const char* p : parts) EXPECT_NE(what.find(p), std::string::npos) << "message lacks '" << p << "': " << what;
    }
#else
    (void)f, (void)code, (void)parts;
    GTEST_SKIP() << "exceptions are disabled";
#endif
}

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
