/// @file when_all.hpp
/// @brief `when_all`: a task that runs several tasks and finishes when all of them have, yielding
/// their results; the first exception (in argument order) is rethrown once all have finished.
///
/// The tasks are started one after the other on the awaiting thread; each runs until it suspends
/// (e.g. on `pool.schedule()`), so tasks that move to a scheduler run concurrently. Nothing is
/// abandoned: even when one task throws, `when_all` waits for all the others before rethrowing.
///
/// @code
/// auto [a, b] = co_await unibuf::when_all(compute(pool, 1), compute(pool, 2));
/// std::vector<int> all = co_await unibuf::when_all(std::move(vector_of_tasks));
/// @endcode
#pragma once

#include "task.hpp"

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace unibuf {

namespace detail {

/// @brief Counts the children still running; the last one resumes the awaiting coroutine.
struct when_all_latch {
    std::atomic<std::size_t> count{0};
    std::coroutine_handle<> waiter;
};

/// @brief One child: awaits a task, stores its result, counts down the latch at its end.
class when_all_child {
public:
    struct promise_type {
        when_all_latch* latch = nullptr;
        [[nodiscard]] when_all_child get_return_object() noexcept {
            return when_all_child(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
        struct final_awaiter {
            [[nodiscard]] bool await_ready() const noexcept { return false; }
            [[nodiscard]] std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
                when_all_latch& l = *h.promise().latch;
                if (l.count.fetch_sub(1, std::memory_order_acq_rel) == 1) return l.waiter;
                return std::noop_coroutine();
            }
            void await_resume() const noexcept {}
        };
        [[nodiscard]] final_awaiter final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        // The child body catches everything itself.
        void unhandled_exception() const noexcept { std::terminate(); }
    };

    when_all_child(when_all_child&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    when_all_child(const when_all_child&) = delete;
    when_all_child& operator=(const when_all_child&) = delete;
    when_all_child& operator=(when_all_child&&) = delete;
    ~when_all_child() {
        if (h_) h_.destroy();
    }
    void start(when_all_latch& l) const {
        h_.promise().latch = &l;
        h_.resume();
    }

private:
    explicit when_all_child(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

/// @brief A task's result as `when_all` keeps it: the value (`std::monostate` for void) or the exception.
template <class T>
struct when_all_slot {
    using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    std::optional<value_type> value;
    std::exception_ptr error;
};

template <class T>
when_all_child when_all_run(task<T>& t, when_all_slot<T>& out) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await t;
            out.value.emplace();
        } else {
            T v = co_await t;
            out.value.emplace(std::move(v));
        }
    } catch (...) {
        out.error = std::current_exception();
    }
}

/// @brief Starts every child, suspends until the last finishes (not at all when all finished at once).
struct when_all_start {
    when_all_latch& latch;
    std::vector<when_all_child>& children;
    [[nodiscard]] bool await_ready() const noexcept { return children.empty(); }
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const {
        latch.waiter = h;
        latch.count.store(children.size() + 1, std::memory_order_relaxed);
        for (auto& c : children) c.start(latch);
        return latch.count.fetch_sub(1, std::memory_order_acq_rel) > 1;
    }
    void await_resume() const noexcept {}
};

} // namespace detail

/// @brief Runs every task of `tasks` (see the file comment); `co_await` yields their values in order.
/// @throws the first exception (in order) a task threw, after all have finished
template <class T>
    requires(!std::is_void_v<T>)
task<std::vector<T>> when_all(std::vector<task<T>> tasks) {
    std::vector<detail::when_all_slot<T>> slots(tasks.size());
    std::vector<detail::when_all_child> children;
    children.reserve(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) children.push_back(detail::when_all_run(tasks[i], slots[i]));
    detail::when_all_latch latch;
    co_await detail::when_all_start{latch, children};
    for (auto& s : slots)
        if (s.error) std::rethrow_exception(s.error);
    std::vector<T> out;
    out.reserve(slots.size());
    for (auto& s : slots) out.push_back(std::move(*s.value));
    co_return out;
}

/// @brief Runs every task of `tasks` (see the file comment); `co_await` yields nothing.
/// @throws the first exception (in order) a task threw, after all have finished
inline task<void> when_all(std::vector<task<void>> tasks) {
    std::vector<detail::when_all_slot<void>> slots(tasks.size());
    std::vector<detail::when_all_child> children;
    children.reserve(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) children.push_back(detail::when_all_run(tasks[i], slots[i]));
    detail::when_all_latch latch;
    co_await detail::when_all_start{latch, children};
    for (auto& s : slots)
        if (s.error) std::rethrow_exception(s.error);
}

namespace detail {
template <class... Ts, std::size_t... I>
task<std::tuple<typename when_all_slot<Ts>::value_type...>> when_all_tuple(std::index_sequence<I...>,
                                                                           task<Ts>... tasks) {
    std::tuple<task<Ts>...> held(std::move(tasks)...);
    std::tuple<when_all_slot<Ts>...> slots;
    std::vector<when_all_child> children;
    children.reserve(sizeof...(Ts));
    (children.push_back(when_all_run(std::get<I>(held), std::get<I>(slots))), ...);
    when_all_latch latch;
    co_await when_all_start{latch, children};
    std::exception_ptr first;
    ((first = first ? first : std::get<I>(slots).error), ...);
    if (first) std::rethrow_exception(first);
    co_return std::tuple<typename when_all_slot<Ts>::value_type...>(std::move(*std::get<I>(slots).value)...);
}
} // namespace detail

/// @brief Runs the tasks (see the file comment); `co_await` yields a tuple of their values
/// (`std::monostate` for a `task<void>`).
/// @throws the first exception (in argument order) a task threw, after all have finished
template <class... Ts>
task<std::tuple<typename detail::when_all_slot<Ts>::value_type...>> when_all(task<Ts>... tasks) {
    return detail::when_all_tuple(std::index_sequence_for<Ts...>{}, std::move(tasks)...);
}

} // namespace unibuf
