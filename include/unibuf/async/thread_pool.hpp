/// @file thread_pool.hpp
/// @brief `thread_pool`: the explicit scheduler of the async layer. Nothing in unibuf runs a
/// coroutine on a thread you did not give it: every awaitable that resumes later takes the
/// scheduler as an argument (no hidden global executor).
///
/// @code
/// unibuf::thread_pool pool(4);
/// unibuf::task<int> work(unibuf::thread_pool& p) {
///     co_await p.schedule();          // from here on, on a pool thread
///     co_return 7;
/// }
/// int v = unibuf::sync_wait(work(pool));
/// @endcode
#pragma once

#include "../core/error.hpp"
#include "timer_queue.hpp"

#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief A fixed set of worker threads running posted coroutines and functions in FIFO order,
/// with a `timer_queue` for deadlines. Thread-safe. Destroy it only after every coroutine that
/// may be resumed on it has finished: the destructor first runs the pending timer callbacks, then
/// the queued work (everything posted before or during the drain runs), then joins.
class thread_pool {
public:
    /// @brief Starts `threads` workers (at least 1).
    /// @throws std::system_error invalid_argument for 0 threads; whatever starting a thread throws
    explicit thread_pool(std::size_t threads) {
        if (threads == 0)
            throw_error(errc::invalid_argument, "unibuf: thread_pool of 0 threads was requested; it needs at least 1");
        workers_.reserve(threads);
        try {
            for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
        } catch (...) {
            stop_and_join();
            throw;
        }
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    /// @brief Runs pending timer callbacks, drains the queue, joins the workers.
    ~thread_pool() {
        timers_.shutdown();
        stop_and_join();
    }

    /// @brief Number of worker threads.
    [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }

    /// @brief Queues `h` to be resumed on a worker. Creates no temporary that outlives the
    /// hand-off: once `h` is queued it may run (and its frame change) at once.
    void post(std::coroutine_handle<> h) {
        // Notified under the lock: once `h` runs, the pool may be destroyed by what it resumes.
        std::lock_guard lk(m_);
        queue_.push_back(item{h, {}});
        cv_.notify_one();
    }
    /// @brief Queues `fn` to run on a worker (an exception it throws terminates: wrap it).
    void post(std::function<void()> fn) {
        std::lock_guard lk(m_);
        queue_.push_back(item{{}, std::move(fn)});
        cv_.notify_one();
    }

    /// @brief The awaiter of `schedule()`.
    struct schedule_awaiter {
        thread_pool* pool;
        /// @brief Always suspends.
        [[nodiscard]] bool await_ready() const noexcept { return false; }
        /// @brief Queues the awaiting coroutine.
        void await_suspend(std::coroutine_handle<> h) const { pool->post(h); }
        /// @brief Nothing to yield.
        void await_resume() const noexcept {}
    };
    /// @brief `co_await pool.schedule()` resumes the coroutine on a worker; yields nothing.
    [[nodiscard]] schedule_awaiter schedule() noexcept { return {this}; }

    /// @brief The pool's timers (for bounded waits; callbacks run on the timer thread).
    [[nodiscard]] timer_queue& timers() noexcept { return timers_; }

    /// @brief True on one of this pool's workers.
    [[nodiscard]] bool on_worker() const noexcept { return current_pool() == this; }

private:
    void run() {
        current_pool() = this;
        for (;;) {
            item it;
            {
                std::unique_lock lk(m_);
                cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) return;  // stopping and drained
                it = std::move(queue_.front());
                queue_.pop_front();
            }
            if (it.handle) {
                it.handle.resume();
            } else {
                it.fn();
            }
        }
    }

    // The pool whose worker this thread is (null elsewhere).
    static const thread_pool*& current_pool() noexcept {
        static thread_local const thread_pool* p = nullptr;
        return p;
    }

    struct item {
        std::coroutine_handle<> handle;  // resumed when set, else fn runs
        std::function<void()> fn;
    };

    void stop_and_join() noexcept {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : workers_)
            if (t.joinable()) t.join();
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::deque<item> queue_;
    bool stop_ = false;
    timer_queue timers_;
    std::vector<std::thread> workers_;  // last: the workers use everything above
};

} // namespace unibuf
