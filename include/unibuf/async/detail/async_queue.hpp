/// @file async_queue.hpp
/// @brief A FIFO that one coroutine pops from (suspending while it is empty) and anyone pushes to;
/// `close()` ends it. The pipeline hands submitted frames from its GPU submitter to its completer
/// through one.
#pragma once

#include <coroutine>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

namespace unibuf::detail {

/// @brief See the file comment. `post` resumes the popping coroutine (on its scheduler).
template <class T>
class async_queue {
public:
    explicit async_queue(std::function<void(std::coroutine_handle<>)> post) : post_(std::move(post)) {}

    /// @brief Appends `v`; resumes the waiting pop, if any.
    void push(T v) {
        std::coroutine_handle<> h;
        {
            std::lock_guard lk(m_);
            items_.push_back(std::move(v));
            h = std::exchange(waiter_, nullptr);
        }
        if (h) post_(h);
    }
    /// @brief No more pushes: a pop on the empty queue yields nothing.
    void close() {
        std::coroutine_handle<> h;
        {
            std::lock_guard lk(m_);
            closed_ = true;
            h = std::exchange(waiter_, nullptr);
        }
        if (h) post_(h);
    }
    /// @brief Reopens an empty queue (a new run).
    void reset() {
        std::lock_guard lk(m_);
        items_.clear();
        closed_ = false;
    }

    /// @brief The awaiter of `pop()`.
    struct pop_awaiter {
        async_queue* q;
        [[nodiscard]] bool await_ready() const noexcept { return false; }
        [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const {
            std::lock_guard lk(q->m_);
            if (!q->items_.empty() || q->closed_) return false;
            q->waiter_ = h;
            return true;
        }
        std::optional<T> await_resume() const {
            std::lock_guard lk(q->m_);
            if (q->items_.empty()) return std::nullopt;
            std::optional<T> v(std::move(q->items_.front()));
            q->items_.pop_front();
            return v;
        }
    };
    /// @brief `co_await q.pop()` yields the oldest item, or nothing once closed and empty (one popper at a time).
    [[nodiscard]] pop_awaiter pop() noexcept { return {this}; }

private:
    std::function<void(std::coroutine_handle<>)> post_;
    std::mutex m_;
    std::deque<T> items_;
    bool closed_ = false;
    std::coroutine_handle<> waiter_;
};

/// @brief Counts down from n; a coroutine awaiting it resumes (posted) when it reaches zero.
class async_latch {
public:
    explicit async_latch(std::function<void(std::coroutine_handle<>)> post) : post_(std::move(post)) {}
    /// @brief Sets the count (no waiter may be pending).
    void reset(std::size_t n) {
        std::lock_guard lk(m_);
        count_ = n;
    }
    /// @brief One less; the last resumes the waiter.
    void count_down() {
        std::coroutine_handle<> h;
        {
            std::lock_guard lk(m_);
            if (count_ > 0 && --count_ == 0) h = std::exchange(waiter_, nullptr);
        }
        if (h) post_(h);
    }
    /// @brief The awaiter of `wait()`.
    struct wait_awaiter {
        async_latch* l;
        [[nodiscard]] bool await_ready() const noexcept { return false; }
        [[nodiscard]] bool await_suspend(std::coroutine_handle<> h) const {
            std::lock_guard lk(l->m_);
            if (l->count_ == 0) return false;
            l->waiter_ = h;
            return true;
        }
        void await_resume() const noexcept {}
    };
    /// @brief `co_await latch.wait()`: until the count is zero.
    [[nodiscard]] wait_awaiter wait() noexcept { return {this}; }

private:
    std::function<void(std::coroutine_handle<>)> post_;
    std::mutex m_;
    std::size_t count_ = 0;
    std::coroutine_handle<> waiter_;
};

} // namespace unibuf::detail
