/// @file scheduler.hpp
/// @brief The `Scheduler` concept: what an awaitable needs from the scheduler it is given (resume a
/// coroutine there, bound a wait by a deadline), and the cancellation error every awaitable throws.
#pragma once

#include "timer_queue.hpp"

#include <concepts>
#include <coroutine>
#include <string>
#include <system_error>

namespace unibuf {

/// @brief A scheduler awaitables can resume coroutines on: `post(h)` queues `h` to be resumed
/// there, `schedule()` is an awaitable that moves the awaiting coroutine there, `timers()` bounds
/// waits. `thread_pool` is one.
template <class S>
concept Scheduler = requires(S& s, std::coroutine_handle<> h) {
    s.post(h);
    s.schedule();
    { s.timers() } -> std::same_as<timer_queue&>;
};

/// @brief The error of a wait ended by its `std::stop_token`: `std::errc::operation_canceled`
/// (unibuf's own `errc` has no cancellation code yet), with `what` naming the wait.
/// @throws std::system_error always
[[noreturn]] inline void throw_cancelled(const std::string& what) {
    throw std::system_error(std::make_error_code(std::errc::operation_canceled), what);
}

/// @brief True when `e` holds the cancellation error `throw_cancelled` throws.
[[nodiscard]] inline bool is_cancelled(const std::system_error& e) noexcept {
    return e.code() == std::make_error_code(std::errc::operation_canceled);
}

} // namespace unibuf
