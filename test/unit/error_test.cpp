#include <unibuf/core/detail/meta.hpp>
#include <unibuf/core/error.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

TEST(Errors, CategoryNamesEveryCode) {
    const auto& cat = unibuf::error_category();
    EXPECT_STREQ(cat.name(), "unibuf");
    for (int e = static_cast<int>(unibuf::errc::out_of_memory); e <= static_cast<int>(unibuf::errc::wrong_thread); ++e)
        EXPECT_NE(cat.message(e), "unknown unibuf error") << e;
    std::error_code ec = unibuf::errc::timeout;  // is_error_code_enum
    EXPECT_EQ(ec.category(), cat);
    EXPECT_EQ(ec.message(), "timeout");
}

TEST(Errors, ThrowErrorCarriesCodeAndMessage) {
    try {
        unibuf::throw_error(unibuf::errc::capacity_exceeded, "asked 10, 3 left");
        FAIL() << "did not throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), unibuf::make_error_code(unibuf::errc::capacity_exceeded));
        EXPECT_NE(std::string(e.what()).find("asked 10, 3 left"), std::string::npos);
    }
    EXPECT_NO_THROW(unibuf::throw_if(std::error_code{}, "fine"));
    EXPECT_THROW(unibuf::throw_if(unibuf::errc::device_lost, "lost"), std::system_error);
}

TEST(Errors, SizeMessagesNameTheElementsAskedForAndTheElementSize) {
    EXPECT_EQ(unibuf::detail::elements_text(3, 8), "3 elements of 8 bytes");
    EXPECT_EQ(unibuf::detail::elements_text(1, 1), "1 element of 1 byte");
    EXPECT_EQ(unibuf::detail::byte_size_overflow_text(2305843009213693953u, 8),
              "2305843009213693953 elements of 8 bytes: the byte size overflows 64 bits (at most "
              "2305843009213693951 elements of 8 bytes fit)");
    // The bound in the message is exact: one element more than it overflows, it does not.
    const std::uint64_t most = ~std::uint64_t{0} / 24;
    EXPECT_NE(unibuf::detail::byte_size_overflow_text(most + 1, 24).find("at most " + std::to_string(most) + " elements"),
              std::string::npos);
    std::uint64_t bytes = 0;
    EXPECT_TRUE(unibuf::detail::checked_mul(most, 24, bytes));
    EXPECT_FALSE(unibuf::detail::checked_mul(most + 1, 24, bytes));
}

// own_copy: a new exception object with the same code and the same what() (not the code's
// message twice); other exceptions and none are handed back as they are.
TEST(Errors, OwnCopyIsANewObjectWithTheSameCodeAndMessage) {
    std::exception_ptr original;
    try {
        unibuf::throw_error(unibuf::errc::device_lost, "vkQueueSubmit: the device was lost");
    } catch (...) {
        original = std::current_exception();
    }
    const std::exception_ptr copy = unibuf::detail::own_copy(original);
    ASSERT_TRUE(copy);
    EXPECT_NE(copy, original) << "a new exception object";
    auto text = [](const std::exception_ptr& e) -> std::pair<std::error_code, std::string> {
        try {
            std::rethrow_exception(e);
        } catch (const std::system_error& s) {
            return {s.code(), s.what()};
        }
    };
    const auto [code, what] = text(copy);
    EXPECT_EQ(code, unibuf::make_error_code(unibuf::errc::device_lost));
    EXPECT_EQ(what, text(original).second);
    EXPECT_EQ(what.find("device lost: device lost"), std::string::npos) << what;

    const std::exception_ptr other = std::make_exception_ptr(std::runtime_error("not a system_error"));
    EXPECT_EQ(unibuf::detail::own_copy(other), other);
    EXPECT_FALSE(unibuf::detail::own_copy(nullptr));
}

TEST(Errors, MessageOfIsTheMessageTheErrorWasMadeWith) {
    const std::system_error made(unibuf::make_error_code(unibuf::errc::timeout), "the wait for fence 3");
    EXPECT_EQ(unibuf::detail::message_of(made), "the wait for fence 3");
    const std::system_error bare(unibuf::make_error_code(unibuf::errc::timeout));
    EXPECT_EQ(unibuf::detail::message_of(bare), bare.what()) << "no message given: what() as it is";
}
