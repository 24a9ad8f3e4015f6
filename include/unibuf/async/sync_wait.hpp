/// @file sync_wait.hpp
/// @brief `sync_wait(awaitable)`: runs a task (or any awaitable) from ordinary code, blocking the
/// calling thread until it finishes; returns its value or rethrows its exception.
///
/// The awaitable starts on the calling thread and may move to a scheduler; the calling thread then
/// sleeps on a condition variable (no spinning). Its waits are bounded by the awaitables inside
/// (fences, rings), not by `sync_wait` itself. Never call it on a thread the awaited work needs
/// (e.g. a pool worker of a one-thread pool the task schedules onto): that thread would wait for
/// itself.
#pragma once

#include "task.hpp"

#include <condition_variable>
#include <coroutine>
#include <exception>
#include <mutex>
#include <type_traits>
#include <utility>
#include <variant>

namespace unibuf {

namespace detail {

/// @brief The event `sync_wait` sleeps on.
struct sync_wait_event {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    void set() noexcept {
        // Notified under the lock: the waiter may return (and this event go) as soon as it sees `done`.
        std::lock_guard lk(m);
        done = true;
        cv.notify_all();
    }
    void wait() {
        std::unique_lock lk(m);
        cv.wait(lk, [&] { return done; });
    }
};

/// @brief The coroutine `sync_wait` runs: awaits the awaitable, keeps its result, sets the event.
template <class R>
class sync_wait_task {
public:
    struct promise_type {
        sync_wait_event* event = nullptr;
        std::variant<std::monostate, std::conditional_t<std::is_void_v<R>, std::monostate, R>, std::exception_ptr> result;

        [[nodiscard]] sync_wait_task get_return_object() noexcept {
            return sync_wait_task(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
        struct final_awaiter {
            [[nodiscard]] bool await_ready() const noexcept { return false; }
            void await_suspend(std::coroutine_handle<promise_type> h) const noexcept { h.promise().event->set(); }
            void await_resume() const noexcept {}
        };
        [[nodiscard]] final_awaiter final_suspend() const noexcept { return {}; }
        void unhandled_exception() noexcept { result.template emplace<2>(std::current_exception()); }
        template <class U>
        void return_value(U&& v) {
            result.template emplace<1>(std::forward<U>(v));
        }
    };

    sync_wait_task(sync_wait_task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    sync_wait_task(const sync_wait_task&) = delete;
    sync_wait_task& operator=(const sync_wait_task&) = delete;
    sync_wait_task& operator=(sync_wait_task&&) = delete;
    ~sync_wait_task() {
        if (h_) h_.destroy();
    }

    /// Runs the coroutine to its end (blocking), then returns its result or rethrows.
    R run() {
        sync_wait_event ev;
        h_.promise().event = &ev;
        h_.resume();
        ev.wait();
        auto& r = h_.promise().result;
        if (r.index() == 2) std::rethrow_exception(std::get<2>(r));
        if constexpr (!std::is_void_v<R>) return std::move(std::get<1>(r));
    }

private:
    explicit sync_wait_task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

template <class R, class A>
sync_wait_task<R> make_sync_wait_task(A a) {
    if constexpr (std::is_void_v<R>) {
        co_await std::move(a);
        co_return std::monostate{};
    } else {
        co_return co_await std::move(a);
    }
}

} // namespace detail

/// @brief Runs `t` to its end on the calling thread (see the file comment) and returns its value.
/// @throws whatever the task threw
template <class T>
T sync_wait(task<T> t) {
    return detail::make_sync_wait_task<T>(std::move(t)).run();
}

} // namespace unibuf
