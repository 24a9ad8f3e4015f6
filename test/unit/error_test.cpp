#include <unibuf/error.hpp>

#include <gtest/gtest.h>

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
