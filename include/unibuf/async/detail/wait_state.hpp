/// @file wait_state.hpp
/// @brief The decision at the heart of every bounded, cancellable awaitable: the first of its
/// wake-up, its deadline and its stop request wins, and the coroutine is resumed exactly once on
/// its scheduler, never before `await_suspend` has finished arming the three.
#pragma once

#include "../scheduler.hpp"
#include "../timer_queue.hpp"

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>

namespace unibuf::detail {

/// @brief How a wait ended.
enum class wait_outcome : std::uint8_t { pending, woken, timed_out, cancelled, failed };

/// @brief Shared by an awaiter and the callbacks that may end its wait (they may outlive it: a
/// wake-up that comes after the deadline finds the decision taken and does nothing).
struct wait_state {
    std::atomic<wait_outcome> outcome{wait_outcome::pending};
    std::atomic<int> holds{2};  ///< the decision and the end of `await_suspend`: the second resumes
    std::coroutine_handle<> handle;
    std::function<void(std::coroutine_handle<>)> post;  ///< resumes `handle` on the scheduler
    std::exception_ptr error;                           ///< set before deciding `failed`

    /// @brief Takes the decision `o` if none was taken; true when this call took it.
    bool decide(wait_outcome o) noexcept {
        wait_outcome expected = wait_outcome::pending;
        if (!outcome.compare_exchange_strong(expected, o, std::memory_order_acq_rel)) return false;
        if (holds.fetch_sub(1, std::memory_order_acq_rel) == 1) post(handle);
        return true;
    }
    /// @brief Called at the end of `await_suspend`: true when the coroutine must stay suspended
    /// (the decision will resume it), false when it was decided already (continue at once).
    bool armed() noexcept { return holds.fetch_sub(1, std::memory_order_acq_rel) != 1; }
};

/// @brief A `wait_state` for coroutine `h` resumed on `sched`.
template <Scheduler S>
[[nodiscard]] std::shared_ptr<wait_state> make_wait_state(std::coroutine_handle<> h, S& sched) {
    auto st = std::make_shared<wait_state>();
    st->handle = h;
    st->post = [&sched](std::coroutine_handle<> c) { sched.post(c); };
    return st;
}

} // namespace unibuf::detail
