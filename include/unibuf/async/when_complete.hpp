/// @file when_complete.hpp
/// @brief `co_await when_complete(notifier, fence, scheduler)`: resumes the coroutine on
/// `scheduler` once the device finished the work of `fence`; nobody busy-waits.
///
/// The notifier is what signals completion, a `FenceNotifier`:
/// - `host_backend` itself: its worker thread calls the waiters of a fence right after the work
///   ran (`host_backend::notify_when_complete`);
/// - Vulkan: a `vulkan_fence_waiter` (async/vulkan/fence_waiter.hpp), one thread per device
///   blocked in the driver on the smallest pending timeline value;
/// - OpenGL: a `gl_context_loop` (async/gl/context_loop.hpp), the context thread's loop, which
///   waits GL sync objects there (GL's thread rule: a sync object is waited on its context's thread).
///
/// Where it continues: on `scheduler`, always, unless the fence was already complete when the
/// `co_await` began (`notifier.is_complete(fence)` true), then at once on the same thread. So after
/// `co_await when_complete(loop, f, loop)` a GL coroutine is on the context thread wherever it
/// awaited from (off the context thread a GL fence never counts as complete at once).
///
/// The wait is bounded (`wait_options::timeout`, default 10 s: `errc::timeout` naming the fence
/// and the bound) and cancellable (`wait_options::stop`: the cancellation error of
/// `throw_cancelled`); a device error the notifier reports (e.g. `errc::device_lost`) is rethrown.
///
/// @code
/// unibuf::thread_pool pool(2);
/// unibuf::task<void> step(unibuf::host_backend& dev, unibuf::thread_pool& pool) {
///     auto f = unibuf::dispatch(dev, kernel, {64}, {}, unibuf::bind(buf));
///     co_await unibuf::when_complete(dev, f, pool);   // resumes on a pool thread when done
/// }
/// @endcode
#pragma once

#include "../core/error.hpp"
#include "detail/wait_state.hpp"
#include "scheduler.hpp"
#include "wait_options.hpp"

#include <chrono>
#include <concepts>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

namespace unibuf {

/// @brief Something that calls back when a fence completes: `n.is_complete(f)` (never blocks,
/// false when unknown), `n.notify_when_complete(f, fn)`: calls `fn(error)` once, from any thread
/// (or at once), with a null error when `f` completed, else the device error.
template <class N>
concept FenceNotifier = requires(N& n, const typename N::fence& f, std::function<void(std::exception_ptr)> fn) {
    { n.is_complete(f) } -> std::convertible_to<bool>;
    n.notify_when_complete(f, std::move(fn));
};

namespace detail {
/// @brief The fence's value, for messages, where it has one.
template <class F>
[[nodiscard]] std::string fence_text(const F& f) {
    if constexpr (requires { f.value; }) {
        return "fence " + std::to_string(f.value);
    } else if constexpr (requires { f.serial(); }) {
        return "fence " + std::to_string(f.serial());
    } else {
        return "fence";
    }
}

/// @brief Cancels a wait on a stop request.
struct stop_wait {
    std::shared_ptr<wait_state> state;
    void operator()() const noexcept { (void)state->decide(wait_outcome::cancelled); }
};
} // namespace detail

/// @brief The awaiter of `when_complete` (see the file comment); `co_await` yields nothing.
template <FenceNotifier N, Scheduler S>
class [[nodiscard]] fence_awaiter {
public:
    /// @brief An awaiter of `f` signalled by `n`, resuming on `sched`, bounded and cancelled by `opt`.
    fence_awaiter(N& n, typename N::fence f, S& sched, wait_options opt)
        : notifier_(&n), fence_(std::move(f)), sched_(&sched), opt_(std::move(opt)) {}

    /// @brief True when `f` is complete already (no suspension, no hop) or nothing to do.
    [[nodiscard]] bool await_ready() {
        if (opt_.stop.stop_requested()) return false;  // decided in await_suspend
        return notifier_->is_complete(fence_);
    }
    /// @brief Arms the notifier, the deadline and the stop callback; the first to fire resumes
    /// the coroutine on the scheduler.
    bool await_suspend(std::coroutine_handle<> h) {
        state_ = detail::make_wait_state(h, *sched_);
        if (opt_.stop.stop_requested()) {
            (void)state_->decide(detail::wait_outcome::cancelled);
            return state_->armed();  // false: continue at once with the cancellation error
        }
        {
            // Locals end before the hand-off below: once armed, the coroutine may run elsewhere
            // and its frame (where a compiler may keep them) change.
            std::shared_ptr<detail::wait_state> st = state_;
            timer_ = sched_->timers().call_at(detail::deadline_after(opt_.timeout),
                                              [st] { (void)st->decide(detail::wait_outcome::timed_out); });
            if (opt_.stop.stop_possible()) stop_.emplace(opt_.stop, detail::stop_wait{state_});
            notifier_->notify_when_complete(fence_, [st](std::exception_ptr e) {
                if (e) {
                    // Only the winner of the decision reads `error`: set it first, then decide.
                    wait_outcome_error(*st, std::move(e));
                } else {
                    (void)st->decide(detail::wait_outcome::woken);
                }
            });
        }
        // Decided while arming (e.g. the fence completed meanwhile): still continue on the
        // scheduler, as promised once the coroutine did not continue in await_ready.
        if (!state_->armed()) sched_->post(h);
        return true;
    }
    /// @brief Returns when the fence completed.
    /// @throws std::system_error timeout, the cancellation error, or the notifier's device error
    void await_resume() {
        stop_.reset();
        if (!state_) return;  // ready at once
        (void)sched_->timers().cancel(timer_);
        switch (state_->outcome.load(std::memory_order_acquire)) {
            case detail::wait_outcome::woken:
            case detail::wait_outcome::pending: return;
            case detail::wait_outcome::timed_out:
                throw_error(errc::timeout, "unibuf: when_complete: " + detail::fence_text(fence_) +
                                               " did not complete within " + detail::ms_text(opt_.timeout) + " ms");
            case detail::wait_outcome::cancelled:
                throw_cancelled("unibuf: when_complete: the wait for " + detail::fence_text(fence_) +
                                " was cancelled (stop requested)");
            case detail::wait_outcome::failed:
                // Taken out of the shared state: the exception object then goes with this thread
                // alone (the notifier's thread may drop the state's last reference later; see
                // detail::own_copy for why that matters to ThreadSanitizer).
                std::rethrow_exception(std::exchange(state_->error, nullptr));
        }
    }

private:
    static void wait_outcome_error(detail::wait_state& st, std::exception_ptr e) {
        // `error` is written before the decision, by the one callback that can fail (the notifier's).
        st.error = std::move(e);
        (void)st.decide(detail::wait_outcome::failed);
    }

    N* notifier_;
    typename N::fence fence_;
    S* sched_;
    wait_options opt_;
    std::shared_ptr<detail::wait_state> state_;
    std::uint64_t timer_ = 0;
    std::optional<std::stop_callback<detail::stop_wait>> stop_;
};

/// @brief `co_await when_complete(n, f, sched)`: resumes on `sched` once `f` completed (see the
/// file comment); yields nothing.
/// @throws std::system_error timeout (names the fence and the bound), the cancellation error, or
///         the device error the notifier reports
template <FenceNotifier N, Scheduler S>
[[nodiscard]] fence_awaiter<N, S> when_complete(N& n, typename N::fence f, S& sched, wait_options opt = {}) {
    return fence_awaiter<N, S>(n, std::move(f), sched, std::move(opt));
}

} // namespace unibuf
