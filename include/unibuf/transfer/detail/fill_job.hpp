/// @file fill_job.hpp
/// @brief The steps of one `producer::fill`, not part of the API: how a fill is cut into grains
/// and chunks (`detail::fill_layout`), where the writers store (`detail::fill_target`), and the
/// job itself (`detail::fill_job`): the writer loop on the team's threads, the waits for a free
/// staging-ring slot, the coordinator that submits each complete chunk's copy from the calling
/// thread, and the first error of the fill. Also `detail::fill_thread`, the producer's thread for
/// fills whose caller does not wait (`producer::fill_detached`, behind the async layer's
/// `fill_async`).
///
/// Errors: a writer function's exception, a wait that ran past the producer's bound and a
/// backend's exception in the coordinator each stop the fill (no more grains are handed out) and
/// are kept; the producer raises the kept one after the writers stopped and the queued copies were
/// waited for. The coordinator's error replaces a writer's. Without exceptions (UNIBUF_EXCEPTIONS
/// 0) a writer function cannot throw and a backend aborts on its own errors: only the bounded
/// waits remain, and the producer raises them as every throwing entry point does there (it aborts
/// with the message).
#pragma once

#include "../writer_team.hpp"
#include "../../backend/concepts.hpp"
#include "../../buffer/view.hpp"
#include "../../core/config.hpp"
#include "../../core/error.hpp"
#include "../../core/timeout.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if UNIBUF_EXCEPTIONS
#  include <exception>
#endif

namespace unibuf::detail {

/// @brief How one fill of `elements` elements is cut: grains (one writer call each, handed out in
/// order) and chunks (one transfer each, whole grains), all in elements.
struct fill_layout {
    std::size_t elements = 0;
    std::size_t grain = 1;             ///< elements per writer call
    std::size_t chunk = 1;             ///< elements per copy (a whole number of grains)
    std::size_t grains = 0;            ///< writer calls
    std::size_t chunks = 0;            ///< copies
    std::size_t grains_per_chunk = 1;

    /// @brief The layout of `n` elements of `elem` bytes for grains of about `grain_bytes` (at
    /// least one element) and chunks of about `chunk_bytes` (at least one grain).
    [[nodiscard]] static fill_layout of(std::size_t n, std::size_t elem, std::size_t grain_bytes,
                                        std::size_t chunk_bytes) noexcept {
        // grain * elem <= max(grain_bytes, elem) and chunk * elem <= max(chunk_bytes, grain * elem):
        // no product below wraps; the counts round up without forming n + grain.
        fill_layout l;
        l.elements = n;
        l.grain = std::max<std::size_t>(1, grain_bytes / elem);
        l.chunk = l.grain * std::max<std::size_t>(1, chunk_bytes / (l.grain * elem));
        l.grains = n / l.grain + (n % l.grain != 0 ? 1 : 0);
        l.chunks = n / l.chunk + (n % l.chunk != 0 ? 1 : 0);
        l.grains_per_chunk = l.chunk / l.grain;
        return l;
    }

    /// @brief Grains of chunk `c` (the last chunk may hold fewer).
    [[nodiscard]] std::size_t grains_in(std::size_t c) const noexcept {
        return std::min(grains_per_chunk, grains - c * grains_per_chunk);
    }
};

/// @brief Where a fill's writers store and where its chunks go.
template <class Allocation>
struct fill_target {
    Allocation* dest = nullptr;        ///< the buffer's allocation
    std::uint64_t base = 0;            ///< the buffer's byte offset in it
    std::byte* host = nullptr;         ///< the buffer's host memory (its mapping, or its own staging)
    Allocation* ring = nullptr;        ///< the producer's staging ring, or null (writers store into `host`)
    std::byte* ring_host = nullptr;    ///< the ring's host memory
    std::size_t ring_slots = 0;        ///< chunks the ring holds at once (the chunk count without a ring)
    bool pipelined = false;            ///< staged_pipelined: each complete chunk is copied as the writers go on
};

/// @brief One thread that runs posted jobs in order, one at a time: the coordinator of fills
/// whose caller does not wait for them (it then blocks here, in the producer's own thread, not in
/// the caller's). Sleeps while idle; the destructor runs the jobs already posted, then joins.
class fill_thread {
public:
    /// @brief Starts the thread. @throws std::system_error when it cannot start
    fill_thread() : thread_([this] { loop(); }) {}
    fill_thread(const fill_thread&) = delete;
    fill_thread& operator=(const fill_thread&) = delete;
    /// @brief Runs the jobs already posted, then stops and joins the thread.
    ~fill_thread() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    /// @brief Queues `job` (it must not throw: it reports its own errors).
    void post(std::function<void()> job) {
        {
            std::lock_guard lk(m_);
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

private:
    void loop() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lk(m_);
                cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
                if (jobs_.empty()) return;  // stopping, nothing left
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;  // guarded by m_
    bool stop_ = false;                       // guarded by m_
    std::thread thread_;                      // last: starts once the members above exist
};

/// @brief One fill in progress: writers on the team's threads, the coordinator on the calling
/// thread (see the file comment). Run once.
template <class B, class T, class Fn>
class fill_job {
public:
    using fence_type = typename B::fence;
    using allocation_type = typename B::allocation;

    /// @brief A job that calls `fn` for the grains of `layout` into `target`; every wait it does
    /// is bounded by `timeout`.
    fill_job(B& backend, Fn& fn, const fill_layout& layout, const fill_target<allocation_type>& target,
             std::chrono::nanoseconds timeout)
        : backend_(backend), fn_(fn), layout_(layout), target_(target), timeout_(timeout),
          done_(std::make_unique<std::atomic<std::size_t>[]>(std::max<std::size_t>(layout.chunks, 1))) {
        for (std::size_t c = 0; c < layout_.chunks; ++c) done_[c].store(0, std::memory_order_relaxed);
        copies_.reserve(layout_.chunks);
    }
    fill_job(const fill_job&) = delete;
    fill_job& operator=(const fill_job&) = delete;

    /// @brief Runs `writers` writers on `team` and the coordinator here; returns when all stopped.
    void run(writer_team& team, unsigned writers) {
        team.run([this](unsigned) { write_grains(); }, [this] { coordinate_guarded(); }, writers);
    }

    /// @brief True when the fill stopped on an error (`raise` reports it).
    [[nodiscard]] bool failed() const noexcept { return error_.set; }
    /// @brief Reports the kept error: rethrows a kept exception, else throws (aborts without
    /// exceptions) the kept code and message.
    /// @throws the kept exception, or std::system_error with the kept code
    [[noreturn]] void raise() const {
#if UNIBUF_EXCEPTIONS
        if (error_.exception) std::rethrow_exception(error_.exception);
#endif
        throw_error(error_.code, error_.what);
    }
    /// @brief One fence per queued chunk copy, in queue order (chunks of one submission share it).
    [[nodiscard]] const std::vector<fence_type>& copies() const noexcept { return copies_; }
    /// @brief Device submissions the copies took.
    [[nodiscard]] std::size_t submissions() const noexcept { return submissions_; }
    /// @brief Times a writer waited for a ring slot.
    [[nodiscard]] std::size_t slot_waits() const noexcept { return slot_waits_; }

private:
    // The first error of the fill (a writer's), or the coordinator's, which replaces it.
    struct fill_error {
        bool set = false;
        errc code = errc::timeout;
        std::string what;
#if UNIBUF_EXCEPTIONS
        std::exception_ptr exception;
#endif
    };

    // ---- the writers (team threads) ----

    // Takes grains in order until none is left or the fill stops.
    void write_grains() {
        for (;;) {
            if (stop_.load(std::memory_order_acquire)) return;
            const std::size_t g = next_.fetch_add(1, std::memory_order_relaxed);
            if (g >= layout_.grains) return;
            if (!write_grain_guarded(g)) return;
            if (target_.pipelined) note_written(g * layout_.grain / layout_.chunk);
        }
    }

    // A writer function's exception (or any other on this thread) stops the fill, kept as its error.
    bool write_grain_guarded(std::size_t g) {
#if UNIBUF_EXCEPTIONS
        try {
            return write_grain(g);
        } catch (...) {
            std::lock_guard lk(m_);
            if (!error_.set) {
                error_.set = true;
                error_.exception = std::current_exception();
            }
            stop_locked();
            return false;
        }
#else
        return write_grain(g);
#endif
    }

    // Calls the writer function for grain g: into the buffer's memory, or into its chunk's ring
    // slot once the slot is free. False when the fill stopped meanwhile.
    bool write_grain(std::size_t g) {
        const std::size_t first = g * layout_.grain;
        const std::size_t count = std::min(layout_.grain, layout_.elements - first);
        const std::size_t c = first / layout_.chunk;
        std::byte* dst = target_.host + first * sizeof(T);
        if (target_.ring != nullptr) {
            if (!wait_for_slot(c)) return false;
            if (stop_.load(std::memory_order_relaxed)) return false;
            dst = target_.ring_host + slot_offset(c) + (first - c * layout_.chunk) * sizeof(T);
        }
        fn_(write_only_view<T>(reinterpret_cast<T*>(dst), count), first);
        return true;
    }

    // Waits (bounded) until the ring slot of chunk c no longer holds chunk c - ring_slots, whose
    // copy the coordinator waits for once a writer waits here. False when the fill stopped or the
    // wait ran out (kept as the fill's error).
    bool wait_for_slot(std::size_t c) {
        const std::size_t slots = target_.ring_slots;
        if (c < slots) return true;
        std::unique_lock lk(m_);
        if (released_ > c - slots) return true;
        ++waiting_;
        ++slot_waits_;
        coord_cv_.notify_one();
        const bool ok = slot_cv_.wait_until(lk, detail::deadline_after(timeout_), [&] {
            return released_ > c - slots || stop_.load(std::memory_order_relaxed);
        });
        --waiting_;
        if (!ok) {
            if (!error_.set)
                keep_error_locked(errc::timeout, "unibuf: producer: staging chunk " + std::to_string(c % slots) +
                                                     " was not free within " + detail::ms_text(timeout_) +
                                                     " ms (its copy of chunk " + std::to_string(c - slots) +
                                                     " is still pending)");
            stop_locked();
            return false;
        }
        return true;
    }

    // Counts a written grain of chunk c; the chunk's last grain wakes the coordinator.
    void note_written(std::size_t c) {
        if (done_[c].fetch_add(1, std::memory_order_acq_rel) + 1 == layout_.grains_in(c)) {
            std::lock_guard lk(m_);  // notify under the lock: the coordinator may be about to sleep
            coord_cv_.notify_one();
        }
    }

    // ---- the coordinator (calling thread) ----

    // A backend's exception stops the fill and is kept as its error (it replaces a writer's).
    void coordinate_guarded() {
#if UNIBUF_EXCEPTIONS
        try {
            coordinate();
        } catch (...) {
            std::lock_guard lk(m_);
            error_ = fill_error{};
            error_.set = true;
            error_.exception = std::current_exception();
            stop_locked();
        }
#else
        coordinate();
#endif
    }

    // Pipelined fills: submits each group of complete chunks, and frees ring slots writers wait for.
    void coordinate() {
        if (!target_.pipelined) return;
        std::size_t submitted = 0;
        for (;;) {
            std::unique_lock lk(m_);
            coord_cv_.wait(lk, [&] {
                return stop_.load(std::memory_order_relaxed) || submitted == layout_.chunks ||
                       chunk_complete(submitted) || (waiting_ > 0 && released_ < submitted);
            });
            if (stop_.load(std::memory_order_relaxed) || submitted == layout_.chunks) return;
            if (chunk_complete(submitted)) {
                lk.unlock();
                submitted = submit_complete_chunks(submitted);
                continue;
            }
            // A writer waits for the slot of the oldest chunk still in flight.
            const std::size_t oldest = released_;
            lk.unlock();
            if (!release_slots(oldest, submitted)) return;
        }
    }

    [[nodiscard]] bool chunk_complete(std::size_t c) const noexcept {
        return done_[c].load(std::memory_order_acquire) == layout_.grains_in(c);
    }

    // Every chunk complete by now, from `from` on, goes into one submission; returns the next
    // chunk to submit.
    std::size_t submit_complete_chunks(std::size_t from) {
        std::size_t to = from + 1;
        while (to < layout_.chunks && chunk_complete(to)) ++to;
        submit_chunks(from, to);
        return to;
    }

    // Queues the copies of chunks [from, to): one submission where the backend records several
    // commands into one (a batch: one barrier and one signal for all), else one each.
    void submit_chunks(std::size_t from, std::size_t to) {
        const bool ring = target_.ring != nullptr;
        allocation_type& dest = *target_.dest;
        if (ring)
            for (std::size_t c = from; c < to; ++c)
                (void)backend_.flush(*target_.ring, slot_offset(c), chunk_bytes(c));  // non-coherent staging memory
        fence_type f{};
        if constexpr (CopyBatchingBackend<B>) {
            auto batch = backend_.begin();
            for (std::size_t c = from; c < to; ++c) {
                if (ring) batch.copy(*target_.ring, slot_offset(c), dest, target_.base + chunk_offset(c), chunk_bytes(c));
                else batch.upload(dest, target_.base + chunk_offset(c), chunk_bytes(c));  // its own staging -> device
            }
            f = batch.submit();
            ++submissions_;
        } else {
            for (std::size_t c = from; c < to; ++c) {
                f = ring ? backend_.copy(*target_.ring, slot_offset(c), dest, target_.base + chunk_offset(c), chunk_bytes(c))
                         : backend_.flush(dest, target_.base + chunk_offset(c), chunk_bytes(c));
                ++submissions_;
            }
        }
        copies_.resize(to, f);
    }

    // Waits (bounded) for the copy of chunk `oldest`, then marks it and every later submitted
    // chunk already copied as released, waking the writers that wait for their slots. False when
    // the wait ran out (kept as the fill's error).
    bool release_slots(std::size_t oldest, std::size_t submitted) {
        std::size_t c = oldest;
        if (!backend_.wait(copies_[c], timeout_)) {
            std::lock_guard lk(m_);
            error_ = fill_error{};
            keep_error_locked(errc::timeout, "unibuf: producer: the staging copy of chunk " + std::to_string(c) +
                                                 " did not complete within " + detail::ms_text(timeout_) + " ms");
            stop_locked();
            return false;
        }
        ++c;
        while (c < submitted && backend_.is_complete(copies_[c])) ++c;  // its batch, and any done since
        std::lock_guard lk(m_);
        released_ = c;
        slot_cv_.notify_all();
        return true;
    }

    // ---- shared ----

    [[nodiscard]] std::uint64_t chunk_offset(std::size_t c) const noexcept {
        return static_cast<std::uint64_t>(c) * layout_.chunk * sizeof(T);
    }
    [[nodiscard]] std::uint64_t chunk_bytes(std::size_t c) const noexcept {
        return static_cast<std::uint64_t>(std::min(layout_.chunk, layout_.elements - c * layout_.chunk)) * sizeof(T);
    }
    [[nodiscard]] std::uint64_t slot_offset(std::size_t c) const noexcept {
        return static_cast<std::uint64_t>(c % target_.ring_slots) * layout_.chunk * sizeof(T);
    }

    // Under m_: keeps `code` and `what` as the fill's error.
    void keep_error_locked(errc code, std::string what) {
        error_.set = true;
        error_.code = code;
        error_.what = std::move(what);
    }
    // Under m_: no more grains; wakes the coordinator and the writers waiting for slots.
    void stop_locked() noexcept {
        stop_.store(true, std::memory_order_release);
        coord_cv_.notify_one();
        slot_cv_.notify_all();
    }

    B& backend_;
    Fn& fn_;
    const fill_layout layout_;
    const fill_target<allocation_type> target_;
    const std::chrono::nanoseconds timeout_;

    // Shared between the writers and the coordinator.
    std::atomic<std::size_t> next_{0};                 // next grain to hand out
    std::atomic<bool> stop_{false};
    std::unique_ptr<std::atomic<std::size_t>[]> done_;  // grains written per chunk
    std::mutex m_;
    std::condition_variable coord_cv_, slot_cv_;
    std::size_t released_ = 0;    // chunks whose ring slot is free again (guarded by m_)
    std::size_t waiting_ = 0;     // writers waiting for a slot (guarded by m_)
    std::size_t slot_waits_ = 0;  // guarded by m_
    fill_error error_;            // guarded by m_

    // The coordinator's alone (read by the producer after the run).
    std::vector<fence_type> copies_;
    std::size_t submissions_ = 0;
};

} // namespace unibuf::detail
