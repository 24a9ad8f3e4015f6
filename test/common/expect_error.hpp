// expect_error: the check every error test makes (a std::system_error of one code whose message
// names what was asked), shared by all test folders.
#pragma once

#include <unibuf/core/config.hpp>
#include <unibuf/core/error.hpp>

#include <gtest/gtest.h>

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

} // namespace unibuf_test
