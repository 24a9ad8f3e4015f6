/// @file task.hpp
/// @brief `task<T>`: a lazy coroutine whose result (a value, or the exception it threw) is handed
/// to the coroutine that awaits it.
///
/// A task does nothing until it is awaited (`co_await t`, or `sync_wait(std::move(t))`); then it
/// runs on the awaiting thread until it suspends itself (e.g. on `pool.schedule()` or a fence). When
/// it finishes after suspending, the awaiting coroutine is resumed by symmetric transfer (the
/// finishing coroutine returns the awaiter's handle instead of calling it); when it finishes
/// without suspending, the awaiter simply continues (see `detail::task_promise_base`), so a loop of
/// 10^5 `co_await`s does not grow the stack at any optimization level. Recursion (a task awaiting
/// a task awaiting ...) nests one call per level while going down, like ordinary calls. An exception thrown in the task is rethrown by the
/// `co_await` that awaited it.
///
/// @code
/// unibuf::task<int> answer() { co_return 42; }
/// unibuf::task<int> twice() { const int a = co_await answer(); co_return 2 * a; }
/// int v = unibuf::sync_wait(twice());   // 84
/// @endcode
///
/// Note for GCC 12: write `auto t = make(); T v = co_await std::move(t);` or a plain
/// `co_await f(args)`, not `co_await [&] { ... }()` inside a larger expression; GCC 12 has been seen to
/// destroy the temporaries of such an expression twice. The library itself never uses that pattern.
#pragma once

#include "../core/error.hpp"

#include <atomic>
#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

namespace unibuf {

template <class T = void>
class task;

namespace detail {

/// @brief What every task promise has: the coroutine to resume when the task finishes, and the
/// flag that decides who resumes it.
///
/// `co_await t` resumes the task inside `await_suspend`; whichever of the two sides gets to
/// `state` second continues the awaiter: the task's end (it then resumes the awaiter by symmetric
/// transfer) or the awaiter itself (the task already ended: `await_suspend` returns false and the
/// awaiter continues on the same stack frame, without a nested call). So a loop of `co_await`s of
/// tasks that end at once never nests, even where the compiler does not turn symmetric transfer
/// into a tail call (GCC 12 and Clang 16 at -O0 with AddressSanitizer do not).
struct task_promise_base {
    std::coroutine_handle<> continuation;  ///< the awaiting coroutine (null: nobody awaits)
    std::atomic<bool> state{false};        ///< set by the first of: the task ended, the awaiter suspended

    /// @brief Resumes the awaiting coroutine by symmetric transfer if it is suspended already.
    struct final_awaiter {
        [[nodiscard]] bool await_ready() const noexcept { return false; }
        template <class Promise>
        [[nodiscard]] std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) const noexcept {
            task_promise_base& p = h.promise();
            if (!p.continuation) return std::noop_coroutine();
            if (p.state.exchange(true, std::memory_order_acq_rel)) return p.continuation;
            return std::noop_coroutine();  // the awaiter's await_suspend continues it
        }
        void await_resume() const noexcept {}
    };

    [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
    [[nodiscard]] final_awaiter final_suspend() const noexcept { return {}; }
};

/// @brief The promise of `task<T>`: the value or the exception.
template <class T>
struct task_promise : task_promise_base {
    std::variant<std::monostate, T, std::exception_ptr> result;

    [[nodiscard]] task<T> get_return_object() noexcept;
    template <class U>
        requires std::convertible_to<U&&, T>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        result.template emplace<1>(std::forward<U>(v));
    }
    void unhandled_exception() noexcept { result.template emplace<2>(std::current_exception()); }

    /// @brief The value (moved out), or the exception rethrown.
    T take() {
        if (result.index() == 2) std::rethrow_exception(std::get<2>(result));
        return std::move(std::get<1>(result));
    }
};

/// @brief The promise of `task<void>`.
template <>
struct task_promise<void> : task_promise_base {
    std::exception_ptr error;

    [[nodiscard]] task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void unhandled_exception() noexcept { error = std::current_exception(); }
    void take() const {
        if (error) std::rethrow_exception(error);
    }
};

} // namespace detail

/// @brief A lazy coroutine producing a `T` (see the file comment). Move-only; owns its coroutine
/// frame, destroyed with the task. `co_await`ing a task starts it and yields its value (rethrows its
/// exception). A default-constructed or moved-from task is empty (`valid()` false): awaiting it
/// throws `errc::invalid_argument`; destroying or assigning over it does nothing else.
/// @tparam T the result type (`void` for none; references are not supported)
template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using value_type = T;

    /// @brief An empty task (no coroutine).
    task() noexcept = default;
    /// @brief Takes `o`'s coroutine; `o` becomes empty.
    task(task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    /// @brief Destroys the coroutine held before, then takes `o`'s; `o` becomes empty.
    task& operator=(task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    /// @brief Destroys the coroutine frame (a task must not be destroyed while it runs).
    ~task() {
        if (h_) h_.destroy();
    }

    /// @brief True when the task holds a coroutine.
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }
    /// @brief True when the coroutine ran to its end.
    [[nodiscard]] bool done() const noexcept { return h_ && h_.done(); }

    /// @brief The awaiter of `co_await task`: starts the coroutine, resumes the awaiter when it
    /// finishes, yields its value or rethrows its exception.
    struct awaiter {
        std::coroutine_handle<promise_type> h;
        /// @brief True when there is nothing to run (empty or finished task).
        [[nodiscard]] bool await_ready() const noexcept { return !h || h.done(); }
        /// @brief Runs the task; false when it finished meanwhile (the awaiter continues at once).
        [[nodiscard]] bool await_suspend(std::coroutine_handle<> awaiting) const {
            h.promise().continuation = awaiting;
            h.resume();
            // false: the task ended during resume(); the awaiter continues at once, unnested.
            return !h.promise().state.exchange(true, std::memory_order_acq_rel);
        }
        /// @brief The task's value, or its exception rethrown.
        /// @throws what the task threw; std::system_error invalid_argument for an empty task
        T await_resume() const {
            if (!h) throw_error(errc::invalid_argument, "unibuf: co_await of an empty task (moved from or default-constructed)");
            return h.promise().take();
        }
    };
    /// @brief `co_await t` (t an lvalue): runs `t`, yields its result (moved out of the task).
    [[nodiscard]] awaiter operator co_await() & noexcept { return awaiter{h_}; }
    /// @brief `co_await f()`: runs the task, yields its result.
    [[nodiscard]] awaiter operator co_await() && noexcept { return awaiter{h_}; }

private:
    friend struct detail::task_promise<T>;
    explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}
} // namespace detail

} // namespace unibuf
