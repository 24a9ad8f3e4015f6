/// @file context_loop.hpp
/// @brief `gl_context_loop`: the OpenGL context thread as a scheduler, and the completion signal
/// of `when_complete` for GL fences.
///
/// GL's thread rule (backend/gl/gl_backend.hpp): GL calls, including waiting on a sync object that
/// is not yet known complete, run on the thread where the context is current. So GL fences are
/// waited **on the context thread's loop**: `loop.run(task)` runs there; coroutines that
/// `co_await loop.schedule()` (or are resumed by a `when_complete(loop, fence, loop)`) run there
/// and may call the backend; `when_complete(loop, fence, pool)` from any thread registers the
/// fence, and the loop calls `glClientWaitSync` on the oldest pending fence (fences of one
/// context complete in order), each wait bounded by `slice` (default 1 ms) so that work posted
/// meanwhile starts within one slice. When neither work nor fences are pending, the loop sleeps
/// on a condition variable. Nothing spins.
///
/// @code
/// unibuf::gl_backend gpu;                        // context current on this thread
/// unibuf::gl_context_loop loop(gpu);
/// unibuf::task<void> step(unibuf::gl_context_loop& loop, ...) {
///     auto f = unibuf::dispatch(loop.backend(), kernel, {64}, {}, unibuf::bind(buf));
///     co_await unibuf::when_complete(loop, f, loop);   // back on the context thread when done
/// }
/// loop.run(step(loop, ...));                     // on the context thread
/// @endcode
#pragma once

#include "../../backend/gl/gl_backend.hpp"
#include "../../core/error.hpp"
#include "../task.hpp"
#include "../timer_queue.hpp"

#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace unibuf {

/// @brief The context thread's loop (see the file comment): a `Scheduler` and a `FenceNotifier`.
/// Thread-safe to post to and to register fences with from any thread; `run` on the context thread.
class gl_context_loop {
public:
    using fence = gl_backend::fence;

    /// @brief A loop for `backend`'s context thread; `slice` bounds each single sync-object wait.
    /// @throws std::system_error invalid_argument when `slice` is not positive
    explicit gl_context_loop(gl_backend& backend, std::chrono::nanoseconds slice = std::chrono::milliseconds(1))
        : backend_(&backend), slice_(slice) {
        if (slice <= std::chrono::nanoseconds::zero())
            throw_error(errc::invalid_argument, "unibuf: gl_context_loop: a wait slice of " +
                                                    std::to_string(slice.count()) + " ns was given; it must be positive");
    }
    gl_context_loop(const gl_context_loop&) = delete;
    gl_context_loop& operator=(const gl_context_loop&) = delete;
    /// @brief Runs the pending timer callbacks early; fails fence waits still pending with
    /// `errc::timeout`. Work still queued is dropped (it can only run on a running loop).
    ~gl_context_loop() {
        timers_.shutdown();
        std::lock_guard lk(m_);
        for (auto& w : fences_)
            w.fn(std::make_exception_ptr(std::system_error(
                make_error_code(errc::timeout), "unibuf: gl_context_loop was destroyed before GL fence " +
                                                    std::to_string(w.f.serial()) + " completed")));
    }

    /// @brief The backend whose context thread this loop runs on.
    [[nodiscard]] gl_backend& backend() const noexcept { return *backend_; }

    // ---- Scheduler --------------------------------------------------------------------------

    /// @brief Queues `h` to be resumed on the context thread (by `run`).
    void post(std::coroutine_handle<> h) {
        // Notified under the lock: what `h` resumes may end the loop's owner.
        std::lock_guard lk(m_);
        work_.push_back(h);
        cv_.notify_all();
    }
    /// @brief The awaiter of `schedule()`.
    struct schedule_awaiter {
        gl_context_loop* loop;
        /// @brief Always suspends.
        [[nodiscard]] bool await_ready() const noexcept { return false; }
        /// @brief Queues the awaiting coroutine.
        void await_suspend(std::coroutine_handle<> h) const { loop->post(h); }
        /// @brief Nothing to yield.
        void await_resume() const noexcept {}
    };
    /// @brief `co_await loop.schedule()` continues on the context thread; yields nothing.
    [[nodiscard]] schedule_awaiter schedule() noexcept { return {this}; }
    /// @brief The loop's timers (callbacks run on the timer thread).
    [[nodiscard]] timer_queue& timers() noexcept { return timers_; }

    // ---- FenceNotifier ----------------------------------------------------------------------

    /// @brief True when `f` is known complete (never blocks; off the context thread only the
    /// empty fence and fences already seen complete count).
    [[nodiscard]] bool is_complete(const fence& f) const {
        if (f.empty()) return true;
        if (std::this_thread::get_id() != backend_->context_thread()) return false;
        return backend_->is_complete(f);
    }
    /// @brief Calls `fn(nullptr)` on the context thread once `f` completed (at once when it is
    /// empty), `fn(error)` on device loss. `fn` must be short and must not throw.
    void notify_when_complete(const fence& f, std::function<void(std::exception_ptr)> fn) {
        if (f.empty()) {
            fn(nullptr);
            return;
        }
        {
            std::lock_guard lk(m_);
            // Fences of one context complete in serial order: keep them sorted.
            auto it = fences_.end();
            while (it != fences_.begin() && std::prev(it)->f.serial() > f.serial()) --it;
            fences_.insert(it, waiting{f, std::move(fn)});
            cv_.notify_all();
        }
    }

    // ---- running ----------------------------------------------------------------------------

    /// @brief Runs the loop on the calling thread, the context thread, until `t` finished; returns
    /// its value or rethrows its exception.
    /// @throws std::system_error wrong_thread off the context thread (names both threads); what `t` throws
    template <class T>
    T run(task<T> t) {
        if (std::this_thread::get_id() != backend_->context_thread())
            throw_error(errc::wrong_thread, "unibuf: gl_context_loop::run was called on thread " +
                                                detail::thread_name(std::this_thread::get_id()) +
                                                ", but the GL context is current on thread " +
                                                detail::thread_name(backend_->context_thread()));
        bool done = false;
        std::variant<std::monostate, std::conditional_t<std::is_void_v<T>, std::monostate, T>, std::exception_ptr> out;
        auto driver = drive(std::move(t), out, done);
        post(driver.handle());
        loop_until(done);
        if (out.index() == 2) std::rethrow_exception(std::get<2>(out));
        if constexpr (!std::is_void_v<T>) return std::move(std::get<1>(out));
    }

private:
    struct waiting {
        fence f;
        std::function<void(std::exception_ptr)> fn;
    };

    // A coroutine that runs the task, keeps its result and marks `done` (on the loop's thread).
    struct driver_task {
        struct promise_type {
            [[nodiscard]] driver_task get_return_object() noexcept {
                return driver_task{std::coroutine_handle<promise_type>::from_promise(*this)};
            }
            [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
            [[nodiscard]] std::suspend_always final_suspend() const noexcept { return {}; }
            void return_void() const noexcept {}
            void unhandled_exception() const noexcept { std::terminate(); }
        };
        std::coroutine_handle<promise_type> h;
        driver_task(driver_task&& o) noexcept : h(std::exchange(o.h, nullptr)) {}
        explicit driver_task(std::coroutine_handle<promise_type> x) noexcept : h(x) {}
        driver_task(const driver_task&) = delete;
        driver_task& operator=(const driver_task&) = delete;
        driver_task& operator=(driver_task&&) = delete;
        ~driver_task() {
            if (h) h.destroy();
        }
        [[nodiscard]] std::coroutine_handle<> handle() const noexcept { return h; }
    };

    template <class T, class Out>
    driver_task drive(task<T> t, Out& out, bool& done) {
        try {
            if constexpr (std::is_void_v<T>) {
                co_await t;
            } else {
                T v = co_await t;
                out.template emplace<1>(std::move(v));
            }
        } catch (...) {
            out.template emplace<2>(std::current_exception());
        }
        // Finish on the loop's own thread: the loop destroys this frame as soon as it sees `done`,
        // which must not happen while another thread still runs the end of this coroutine.
        co_await schedule();
        done = true;
    }

    void loop_until(const bool& done) {
        std::unique_lock lk(m_);
        for (;;) {
            if (!work_.empty()) {
                std::deque<std::coroutine_handle<>> batch;
                batch.swap(work_);
                lk.unlock();
                for (auto h : batch) h.resume();
                lk.lock();
                continue;
            }
            if (done) return;
            if (!fences_.empty()) {
                const fence oldest = fences_.front().f;
                lk.unlock();
                std::exception_ptr error;
                try {
                    (void)backend_->wait(oldest, slice_);
                } catch (...) {
                    error = std::current_exception();
                }
                std::vector<std::function<void(std::exception_ptr)>> ready;
                lk.lock();
                // Complete in order: stop at the first that is not (is_complete on this thread is GL-legal).
                while (!fences_.empty() && (error || backend_->is_complete(fences_.front().f))) {
                    ready.push_back(std::move(fences_.front().fn));
                    fences_.pop_front();
                }
                lk.unlock();
                // Each callback gets its own exception object, and this thread keeps none
                // (detail::own_copy says why).
                for (auto& fn : ready) fn(detail::own_copy(error));
                error = nullptr;
                ready.clear();
                lk.lock();
                continue;
            }
            cv_.wait(lk);
        }
    }

    gl_backend* backend_;
    std::chrono::nanoseconds slice_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::coroutine_handle<>> work_;
    std::deque<waiting> fences_;  // sorted by serial
    timer_queue timers_;
};

} // namespace unibuf
