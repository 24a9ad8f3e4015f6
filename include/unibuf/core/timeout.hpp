/// @file timeout.hpp
/// @brief The default bound on the waits unibuf does for a caller, and a deadline that cannot overflow.
#pragma once

#include <chrono>

namespace unibuf {

/// @brief Default bound on any wait unibuf performs on the caller's behalf (fenced/lazy access).
/// Waits that run out throw `errc::timeout` naming what was waited for.
inline constexpr std::chrono::nanoseconds default_wait_timeout = std::chrono::seconds(10);

namespace detail {
/// @brief The time point `timeout` from now on `Clock`, for the bounded waits: saturated at the
/// clock's last time point, so that a timeout of `std::chrono::nanoseconds::max()` ("wait as
/// long as it takes") never overflows the clock's arithmetic; a timeout of zero or less is now.
template <class Clock = std::chrono::steady_clock>
[[nodiscard]] typename Clock::time_point deadline_after(std::chrono::nanoseconds timeout) noexcept {
    const typename Clock::time_point now = Clock::now();
    if (timeout <= std::chrono::nanoseconds::zero()) return now;
    // No clock counts finer than nanoseconds: the cast never widens the count.
    const auto d = std::chrono::duration_cast<typename Clock::duration>(timeout);
    if (d >= Clock::time_point::max() - now) return Clock::time_point::max();
    return now + d;
}
} // namespace detail

} // namespace unibuf
