/// @file stream_awaitable.hpp
/// @brief `co_await push_async<T>(stream, count, notifier, scheduler)`: `upload_stream::push` as a
/// coroutine wait. When the ring must come back to a segment the device still reads, the
/// coroutine awaits that segment's fence (`when_complete`) instead of blocking its thread.
///
/// The stream is not thread-safe: as with `push`, one coroutine (or thread) at a time uses it;
/// the coroutine may continue on the scheduler's thread after a wait, which is fine for the host
/// and Vulkan backends; for GL pass the `gl_context_loop` as scheduler so that it stays on the
/// context thread (a GL stream's pushes close segments with GL fences).
#pragma once

#include "../core/error.hpp"
#include "../core/timeout.hpp"
#include "../transfer/upload_stream.hpp"
#include "scheduler.hpp"
#include "task.hpp"
#include "wait_options.hpp"
#include "when_complete.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <system_error>

namespace unibuf {

/// @brief `co_await push_async<T>(s, count, notifier, sched)` yields the stream's next
/// `block<T>` of `count` elements (see the file comment).
/// @throws std::system_error timeout (names the segment and the bound), capacity_exceeded and
///         invalid_argument as `push`, the cancellation error, a device error
template <class T, class Stream, FenceNotifier N, Scheduler S>
    requires std::same_as<typename N::fence, typename Stream::fence_type>
[[nodiscard]] task<typename Stream::template block<T>> push_async(Stream& s, std::size_t count, N& notifier, S& sched,
                                                                  wait_options opt = {}) {
    const auto deadline = detail::deadline_after(opt.timeout);
    for (;;) {
        if (opt.stop.stop_requested()) throw_cancelled("unibuf: upload_stream: push_async was cancelled (stop requested)");
        std::error_code ec;
        auto b = s.template try_push<T>(count, ec);
        if (b) co_return std::move(*b);
        if (ec != make_error_code(errc::timeout)) {
            // Not a wait: let push name the error (it fails the same way without waiting).
            auto again = s.template push<T>(count, std::chrono::nanoseconds{0});
            co_return again;
        }
        // A failed push waited for the segment after the current one (see upload_stream::push).
        const std::size_t seg = (s.current_segment() + 1) % s.segment_count();
        const typename Stream::fence_type f = s.segment_fence(seg);
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline)
            throw_error(errc::timeout, "unibuf: upload_stream: push_async of " + std::to_string(count) +
                                           " elements: segment " + std::to_string(seg) + " was still read by the device after " +
                                           detail::ms_text(opt.timeout) + " ms");
        const wait_options left{std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now), opt.stop};
        co_await when_complete(notifier, f, sched, left);
    }
}

} // namespace unibuf
