/// @file parallel_writes.hpp
/// @brief `gl_parallel_writes`: CPU threads fill disjoint ranges of one mapped buffer; the context
/// thread then hands the writes to the GPU.
///
/// GL may only be called on the context thread, but a persistent mapping is plain memory: other
/// threads may write it, provided that (1) the GPU no longer uses the buffer when they start,
/// (2) their writes do not overlap, and (3) the context thread flushes / dispatches only after they
/// all finished, with a happens-before edge to their writes. This class gives each of the three a
/// name and a check:
///
/// @code
/// // context thread
/// unibuf::gl_parallel_writes batch(upload);           // waits (bounded) for the buffer's last GPU use
/// std::vector<std::jthread> writers;
/// for (std::size_t t = 0; t < 4; ++t)                   // claim here (overlapping claims throw),
///     writers.emplace_back([c = batch.acquire(t * quarter, quarter)]() mutable {
///         fill(c.view());                                // write there: plain stores into the mapping
///     });                                                // ~claim publishes (release)
/// auto f = batch.finish();   // context thread: waits (bounded) for every claim, flushes the ranges
/// unibuf::dispatch(gpu, kernel, ..., unibuf::bind(upload, unibuf::usage::read));
/// @endcode
#pragma once

#include "../../backend/gl/gl_backend.hpp"

#include "../../buffer/basic_buffer.hpp"
#include "../../buffer/view.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief One batch of host writes from several threads into a `basic_buffer` of the GL backend.
///
/// Construct and `finish()` on the context thread; `acquire` and the claims on any thread.
/// Under `sync::fenced` and `sync::none`, `finish()` flushes every claimed range (explicit flush,
/// staging or shadow copy as the allocation needs); under `sync::lazy` the buffer is host-dirty and
/// the next device use flushes it.
/// Every wait of the batch (the buffer's last device use, the claims still open at `finish()` or
/// at destruction) is bounded by the timeout given to the constructor, or to `finish`.
/// @tparam Buf a host-writable, host-viewable `basic_buffer` whose backend is `gl_backend`
template <class Buf>
class gl_parallel_writes {
    static constexpr bool gl_buffer = std::is_same_v<typename Buf::backend_type, gl_backend>;
    static constexpr bool writable = Buf::host_writable;
    static constexpr bool viewable = Buf::host_viewable;
    static_assert(gl_buffer, "unibuf: gl_parallel_writes is for buffers of the OpenGL backend (gl_backend): a batch "
                             "of writer threads fills only buffers of its own backend (rule R17)");
    static_assert(!gl_buffer || writable, "unibuf: gl_parallel_writes needs a host-writable buffer (access::write_only "
                                          "or access::read_write) (rule R8)");
    static_assert(!gl_buffer || !writable || viewable,
                  "unibuf: gl_parallel_writes writes through the host mapping, which placement::device buffers do "
                  "not have (rule R7)");
    // Past a failed rule the members compile to nothing, so that the rule is the only error.
    static constexpr bool usable = gl_buffer && writable && viewable;

public:
    using value_type = typename Buf::value_type;
    /// @brief What a claim hands out: `std::span<T>`, or a write-only view for `access::write_only`.
    using view_type = std::conditional_t<Buf::host_readable, std::span<value_type>, write_only_view<value_type>>;
    using fence_type = typename Buf::fence_type;

    /// @brief Elements `[offset, offset + size)` held by one writer; publishing ends the claim.
    /// Movable, not copyable; the destructor publishes. A moved-from claim is empty: its view has
    /// no elements, `size()` is 0, and `publish()` does nothing.
    class claim {
    public:
        claim(claim&& o) noexcept
            : owner_(std::exchange(o.owner_, nullptr)), offset_(std::exchange(o.offset_, 0)),
              count_(std::exchange(o.count_, 0)), data_(std::exchange(o.data_, nullptr)) {}
        claim& operator=(claim&&) = delete;
        claim(const claim&) = delete;
        claim& operator=(const claim&) = delete;
        ~claim() { publish(); }

        /// @brief The claimed elements, to write.
        [[nodiscard]] view_type view() const noexcept { return view_type(data_, count_); }
        /// @brief First claimed element.
        [[nodiscard]] std::size_t offset() const noexcept { return offset_; }
        /// @brief Number of claimed elements.
        [[nodiscard]] std::size_t size() const noexcept { return count_; }
        /// @brief Ends the claim: every write made through it happens-before `finish()` returns.
        void publish() noexcept {
            if (owner_ != nullptr) std::exchange(owner_, nullptr)->release_claim();
        }

    private:
        friend class gl_parallel_writes;
        claim(gl_parallel_writes* o, std::size_t off, std::size_t n, value_type* d) noexcept
            : owner_(o), offset_(off), count_(n), data_(d) {}
        gl_parallel_writes* owner_;
        std::size_t offset_;
        std::size_t count_;
        value_type* data_;
    };

    /// @brief Opens the batch: waits up to `timeout` for the buffer's last device use, then takes
    /// its host view (under lazy this brings device-newer data back and marks it host-dirty).
    /// `timeout` also bounds the destructor's wait for claims still open.
    /// @throws std::system_error timeout, wrong_thread (not the context thread), invalid_argument
    /// (an empty, moved-from buffer)
    explicit gl_parallel_writes(Buf& buf, std::chrono::nanoseconds timeout = default_wait_timeout)
        : buf_(&buf), timeout_(timeout) {
        if constexpr (usable) {
            if (buf.empty())
                throw_error(errc::invalid_argument, "unibuf: gl_parallel_writes of an empty (moved-from) buffer");
            if (!buf.wait(timeout))
                throw_error(errc::timeout,
                            "unibuf: gl_parallel_writes: the buffer's last device use did not complete within " +
                                detail::ms_text(timeout) + " ms");
            require_context_thread("opening a batch");
            auto v = buf.view();
            data_ = v.data();
            count_ = buf.size();
        }
    }
    gl_parallel_writes(const gl_parallel_writes&) = delete;
    gl_parallel_writes& operator=(const gl_parallel_writes&) = delete;
    /// @brief Waits (bounded by the constructor's timeout) for claims still open, so that none
    /// outlives the batch; call `finish()` to hand the writes to the device.
    ~gl_parallel_writes() {
        std::unique_lock lk(m_);
        (void)cv_.wait_until(lk, detail::deadline_after(timeout_), [&] { return open_ == 0; });
        UNIBUF_ASSERT(open_ == 0, "gl_parallel_writes destroyed while a writer still holds a claim");
    }

    /// @brief Claims elements `[offset, offset + count)` (any thread). Take every claim before
    /// `finish()` (e.g. on the context thread, then move each to its writer): finish() waits only
    /// for the claims it knows of.
    /// @throws std::system_error out_of_range (outside the buffer), invalid_argument (overlaps an
    /// earlier claim of this batch, or the batch is finished)
    [[nodiscard]] claim acquire(std::size_t offset, std::size_t count) {
        if (offset > count_ || count > count_ - offset)
            throw_error(errc::out_of_range, "unibuf: gl_parallel_writes: a claim of " + std::to_string(count) +
                                                " elements at offset " + std::to_string(offset) + " in a buffer of " +
                                                std::to_string(count_) + " elements");
        std::lock_guard lk(m_);
        if (finished_)
            throw_error(errc::invalid_argument, "unibuf: gl_parallel_writes: acquire after finish(); open a new batch");
        for (const auto& [b, e] : ranges_)
            if (offset < e && b < offset + count)
                throw_error(errc::invalid_argument,
                            "unibuf: gl_parallel_writes: the claim of elements [" + std::to_string(offset) + ", " +
                                std::to_string(offset + count) + ") overlaps the claim [" + std::to_string(b) + ", " +
                                std::to_string(e) + ") of another writer; writers must fill disjoint ranges");
        ranges_.emplace_back(offset, offset + count);
        ++open_;
        return claim(this, offset, count, data_ + offset);
    }

    /// @brief On the context thread: waits up to `timeout` until every claim is published, then
    /// flushes the claimed ranges (fenced, none) or leaves them to the lazy sync. Returns the last
    /// flush's fence (complete when nothing needed a copy).
    /// @throws std::system_error wrong_thread, timeout (claims still open; the batch stays usable)
    fence_type finish(std::chrono::nanoseconds timeout = default_wait_timeout) {
        require_context_thread("finish");
        std::vector<std::pair<std::size_t, std::size_t>> ranges;
        {
            std::unique_lock lk(m_);
            if (!cv_.wait_until(lk, detail::deadline_after(timeout), [&] { return open_ == 0; }))
                throw_error(errc::timeout, "unibuf: gl_parallel_writes::finish: " + std::to_string(open_) +
                                               " claim(s) still open after " +
                                               detail::ms_text(timeout) +
                                               " ms");
            finished_ = true;
            ranges = ranges_;
        }
        fence_type last{};
        if constexpr (usable && Buf::sync != sync_kind::lazy) {
            // No claim wrote anything: an empty flush only clears the buffer's mark of view writes
            // (the batch took the view), so a later device use is not reported as a lost write.
            if (ranges.empty()) buf_->flush(0, 0);
            std::sort(ranges.begin(), ranges.end());
            std::size_t i = 0;
            while (i < ranges.size()) {  // flush merged runs of adjacent claims
                std::size_t b = ranges[i].first;
                std::size_t e = ranges[i].second;
                for (++i; i < ranges.size() && ranges[i].first == e; ++i) e = ranges[i].second;
                if (e > b) {
                    fence_type f = buf_->flush(b, e - b);
                    if (!f.empty()) last = f;
                }
            }
        }
        return last;
    }

private:
    void require_context_thread(const char* what) const {
        if constexpr (usable) {
            const auto owner = buf_->backend().context_thread();
            if (buf_->backend().config().check_thread && std::this_thread::get_id() != owner)
                throw_error(errc::wrong_thread, std::string("unibuf: gl_parallel_writes: ") + what + " on thread " +
                                                    detail::thread_name(std::this_thread::get_id()) +
                                                    "; it flushes through GL and must run on the context thread " +
                                                    detail::thread_name(owner));
        } else {
            (void)what;
        }
    }

    void release_claim() noexcept {
        // Notify under the lock: once finish() sees open_ == 0 the batch may be destroyed, so the
        // writer must not touch cv_ after unlocking.
        std::lock_guard lk(m_);
        --open_;
        cv_.notify_all();
    }

    Buf* buf_;
    std::chrono::nanoseconds timeout_;
    value_type* data_ = nullptr;
    std::size_t count_ = 0;
    std::mutex m_;
    std::condition_variable cv_;
    std::vector<std::pair<std::size_t, std::size_t>> ranges_;  // guarded by m_
    std::size_t open_ = 0;                                      // guarded by m_
    bool finished_ = false;                                     // guarded by m_
};

} // namespace unibuf
