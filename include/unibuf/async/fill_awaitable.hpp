/// @file fill_awaitable.hpp
/// @brief `co_await fill_async(producer, buf, fn, notifier, scheduler)`: `producer::fill` as a
/// coroutine wait. The awaiting coroutine suspends for every wait of the fill and resumes on the
/// scheduler with its result; no thread of the caller blocks.
///
/// The waits and where they happen:
/// - the buffer's previous device use and the producer's staging ring's last copy (the fill
///   would wait for both first): awaited with `when_complete` (suspends; bounded and cancelled by
///   `wait_options`);
/// - the fill itself, where writers wait for a staging-ring chunk, the coordinator for a chunk's
///   copy and for the writers' last grains: it runs on the producer's fill thread
///   (`producer::fill_detached`), those waits block that thread (bounded by
///   `produce_options::wait_timeout`), and the coroutine is resumed on the scheduler once the
///   fill returned. A writer function that never returns is not bounded, as with `fill`.
///
/// The producer runs on the host and Vulkan backends; GL buffers are not filled this way (the
/// fill's backend calls would leave the context thread). One fill of a producer at a time.
///
/// @code
/// unibuf::producer prod(vk, 8);
/// unibuf::task<void> upload(unibuf::upload_buffer<float, unibuf::vulkan_backend>& x) {
///     auto r = co_await unibuf::fill_async(prod, x, [](unibuf::write_only_view<float> out, std::size_t first) {
///         for (std::size_t i = 0; i < out.size(); ++i) out[i] = float(first + i);
///     }, waiter, pool);                       // resumes on `pool` once the fill returned
///     co_await unibuf::when_complete(waiter, r.fence, pool);   // the device sees the data
/// }
/// @endcode
#pragma once

#include "../core/error.hpp"
#include "../transfer/producer.hpp"
#include "scheduler.hpp"
#include "task.hpp"
#include "wait_options.hpp"
#include "when_complete.hpp"

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <utility>

namespace unibuf {

namespace detail {
/// @brief Awaits one detached fill: starts it in `await_suspend`, resumes on the scheduler when
/// the fill thread reported its end.
template <class B, class Buf, class Fn, Scheduler S>
class detached_fill_awaiter {
public:
    using result_type = produce_result<typename B::fence>;
    detached_fill_awaiter(producer<B>& p, Buf& buf, Fn& fn, S& sched) : p_(&p), buf_(&buf), fn_(&fn), sched_(&sched) {}
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        // The callback runs on the fill thread; once it posted `h` this awaiter may be gone, so
        // it writes the outcome first and touches nothing after the post.
        p_->fill_detached(*buf_, *fn_, [this, h](std::optional<result_type> r, std::exception_ptr e) {
            result_ = std::move(r);
            error_ = std::move(e);
            sched_->post(h);
        });
    }
    result_type await_resume() {
        if (error_) std::rethrow_exception(error_);
        return std::move(*result_);
    }

private:
    producer<B>* p_;
    Buf* buf_;
    Fn* fn_;
    S* sched_;
    std::optional<result_type> result_;
    std::exception_ptr error_;
};
} // namespace detail

/// @brief `co_await fill_async(p, buf, fn, notifier, sched)` fills all of `buf` as
/// `p.fill(buf, fn)` does and yields its `produce_result` (see the file comment). `fn` is moved
/// into the coroutine and lives until the fill ended; `buf` must outlive the `co_await`.
/// @throws std::system_error timeout or the cancellation error (the waits before the fill, per
///         `opt`), the errors of `producer::fill`; whatever `fn` throws
template <Backend B, class Buf, class Fn, FenceNotifier N, Scheduler S>
    requires std::same_as<typename N::fence, typename B::fence>
[[nodiscard]] task<produce_result<typename B::fence>> fill_async(producer<B>& p, Buf& buf, Fn fn, N& notifier, S& sched,
                                                                 wait_options opt = {}) {
    if (opt.stop.stop_requested()) throw_cancelled("unibuf: producer: fill_async was cancelled before the fill (stop requested)");
    if constexpr (requires { buf.last_use(); }) {
        if (!buf.empty()) co_await when_complete(notifier, buf.last_use(), sched, opt);  // the fill would wait for it
    }
    if (const std::optional<typename B::fence> ring = p.staging_fence()) co_await when_complete(notifier, *ring, sched, opt);
    if (opt.stop.stop_requested()) throw_cancelled("unibuf: producer: fill_async was cancelled before the fill (stop requested)");
    co_return co_await detail::detached_fill_awaiter<B, Buf, Fn, S>(p, buf, fn, sched);
}

} // namespace unibuf
