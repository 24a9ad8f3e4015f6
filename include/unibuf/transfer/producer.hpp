/// @file producer.hpp
/// @brief `producer`: CPU writer threads fill a buffer until the device can use it, by the
/// fastest path the backend knows for the size, the thread count and the memory.
///
/// A fill is cut into *grains* (one writer call each, handed out in order) and *chunks* (one
/// transfer each). On the `direct` path the writers store straight into the buffer's mapping;
/// on the `staged_pipelined` path they store into host staging memory and the calling thread
/// queues each chunk's copy to the device as soon as its grains are written, so the copy engine
/// and the writers work side by side. The staging memory is the buffer's own (placement::device)
/// or, for zero-copy buffers in mappable VRAM, a ring of chunks the producer owns (allocated on
/// first use, reused afterwards; a chunk is rewritten only after its previous copy completed).
/// Which path a fill takes is the backend's `plan_produce` decision (Vulkan: measured
/// thresholds, `vulkan::producer_thresholds`), reported in the result and overridable.
///
/// @code
/// unibuf::producer prod(gpu, 16);                      // 16 writer threads, kept
/// unibuf::upload_buffer<float, unibuf::vulkan_backend> x(gpu, n);
/// auto r = prod.fill(x, [&](unibuf::write_only_view<float> out, std::size_t first) {
///     for (std::size_t i = 0; i < out.size(); ++i) out[i] = f(first + i);   // any writer thread
/// });
/// // r.path, r.reason: what was done and why; x's last use is the final copy (fenced/lazy wait on it)
/// @endcode
///
/// Threads: the writer function runs on the team's threads, concurrently, on disjoint ranges; it
/// must only write its view. Every backend call (allocation, copies, flushes, fence waits) is made
/// on the thread that calls `fill`, so GL buffers fill from their context thread.
///
/// `fill_detached` runs a fill on the producer's own fill thread and reports its end through a
/// callback, for callers that must not block (the async layer's `co_await fill_async(...)`).
///
/// Rules checked at compile time, each with one error naming it: `fill`/`plan` take a unibuf
/// buffer of the producer's own backend (R17), a host-writable one (R8), and call the writer
/// function as `fn(write_only_view<T>, std::size_t)` (R19).
#pragma once

#include "writer_team.hpp"
#include "detail/fill_job.hpp"
#include "../backend/concepts.hpp"
#include "../buffer/basic_buffer.hpp"
#include "../buffer/concepts.hpp"
#include "../buffer/view.hpp"
#include "../core/config.hpp"
#include "../core/detail/meta.hpp"
#include "../core/error.hpp"
#include "../core/vocabulary.hpp"

#include <chrono>
#include <concepts>
#include <exception>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace unibuf {

namespace detail {
/// A buffer `producer::fill` can fill: a unibuf buffer with the whole-buffer fill protocol
/// (`begin_fill`/`end_fill`: `basic_buffer` and the pool's slices).
template <class Buf>
concept producer_fillable = Buffer<Buf> && requires(Buf& b, const typename Buf::backend_type::fence& f) {
    { b.begin_fill() } -> std::same_as<std::byte*>;
    b.end_fill(f, true);
    { b.empty() } -> std::convertible_to<bool>;
    { b.size() } -> std::convertible_to<std::size_t>;
    { b.size_bytes() } -> std::convertible_to<std::uint64_t>;
};
} // namespace detail

/// @brief Grain and chunk sizes of a fill, and an optional override of the backend's path choice.
struct produce_options {
    /// @brief Bytes per writer call (rounded down to whole elements, at least one).
    std::size_t grain_bytes = std::size_t{256} << 10;
    /// @brief Bytes per staging copy (rounded down to whole grains, at least one).
    std::size_t chunk_bytes = std::size_t{8} << 20;
    /// @brief Chunks in the producer's staging ring (zero-copy buffers on the staged path): with
    /// the default chunk, 64 MiB of host memory, allocated on the first staged fill and kept.
    /// A ring whose bytes would pass 2^64 is `errc::capacity_exceeded` (at construction, or at the
    /// fill whose element size makes a chunk larger than `chunk_bytes`).
    std::size_t ring_chunks = 8;
    /// @brief Bound on each wait the producer does: a ring chunk still being copied out, the
    /// previous fill's last copy, the copies still queued when a fill fails, and the ring's last
    /// copy when the producer is destroyed; past it a fill fails with errc::timeout naming the
    /// wait and this bound. The wait for the buffer's previous device use is the buffer's own,
    /// bounded by its `set_wait_timeout`.
    std::chrono::nanoseconds wait_timeout = default_wait_timeout;
    /// @brief Grains each writer of a fill gets at least: a fill of G grains uses
    /// min(threads, ceil(G / min_grains_per_writer)) writers and wakes no others, so a small fill
    /// is not slowed by waking and coordinating writers it has no work for (more writers than that
    /// were measured slower: see bench/RESULTS.md). 1 uses every thread whenever there are grains.
    std::size_t min_grains_per_writer = 4;
    /// @brief Take this path instead of asking the backend (benchmarks, tests). Ignored for
    /// placement::device buffers, which have no mapping to store into: they are always staged.
    std::optional<produce_path> force;
};

/// @brief What one `fill` did.
template <class Fence>
struct produce_result {
    Fence fence{};               ///< after it the device sees the data (also the buffer's last use)
    produce_path path = produce_path::direct;
    std::string reason;          ///< why this path (the backend's words, or "forced")
    std::uint64_t bytes = 0;     ///< bytes written
    unsigned threads = 0;        ///< writer threads the fill used (see produce_options::min_grains_per_writer)
    std::size_t grains = 0;      ///< writer calls
    std::size_t copies = 0;      ///< chunks copied from staging (0 on the direct path)
    std::size_t submissions = 0;  ///< device submissions those copies took (complete chunks are batched)
    std::size_t slot_waits = 0;  ///< times a writer waited for a staging-ring chunk to be copied out
};

/// @brief A team of writer threads plus, on first need, a staging ring; fills buffers of
/// backend `B` (see the file comment).
///
/// Move-only. A moved-from producer is empty: it has no threads and no ring; `empty()` is true,
/// `threads()` and `ring_bytes()` are 0, `options()` still reads, destruction does nothing, and
/// `plan`, `fill` and `fill_detached` throw `errc::invalid_argument`.
template <Backend B>
class producer {
public:
    using backend_type = B;
    using fence_type = typename B::fence;
    using allocation_type = typename B::allocation;

    /// @brief `threads` writer threads for the fills of buffers on `backend`.
    /// @throws std::system_error invalid_argument (0 threads, a zero grain/chunk/ring size),
    ///         capacity_exceeded (`ring_chunks` chunks of `chunk_bytes` pass 2^64 bytes)
    producer(B& backend, unsigned threads, produce_options opt = {}) : backend_(&backend), opt_(opt) {
        if (opt_.grain_bytes == 0 || opt_.chunk_bytes == 0 || opt_.ring_chunks == 0 || opt_.min_grains_per_writer == 0)
            throw_error(errc::invalid_argument,
                        "unibuf: producer: grain_bytes, chunk_bytes, ring_chunks and min_grains_per_writer must be > 0 (got " +
                            std::to_string(opt_.grain_bytes) + ", " + std::to_string(opt_.chunk_bytes) + ", " +
                            std::to_string(opt_.ring_chunks) + ", " + std::to_string(opt_.min_grains_per_writer) + ")");
        check_ring_size(opt_.chunk_bytes, 1);
        team_ = std::make_unique<writer_team>(threads);
    }
    producer(const producer&) = delete;
    producer& operator=(const producer&) = delete;
    /// @brief Takes `o`'s threads, ring and backend; `o` is left empty.
    producer(producer&& o) noexcept
        : backend_(std::exchange(o.backend_, nullptr)), opt_(o.opt_), team_(std::move(o.team_)),
          ring_(std::exchange(o.ring_, std::nullopt)), ring_last_(std::exchange(o.ring_last_, std::nullopt)),
          filler_(std::move(o.filler_)) {}
    /// @brief Releases this producer as the destructor does, then takes `o`'s state; `o` is left empty.
    producer& operator=(producer&& o) noexcept {
        if (this != &o) {
            release();
            backend_ = std::exchange(o.backend_, nullptr);
            opt_ = o.opt_;
            team_ = std::move(o.team_);
            ring_ = std::exchange(o.ring_, std::nullopt);
            ring_last_ = std::exchange(o.ring_last_, std::nullopt);
            filler_ = std::move(o.filler_);
        }
        return *this;
    }
    /// @brief Waits for the staging ring's last copies (at most `produce_options::wait_timeout`)
    /// before freeing it, and stops the threads. Nothing for an empty producer.
    ~producer() { release(); }

    /// @brief True for a moved-from producer (no threads, no ring).
    [[nodiscard]] bool empty() const noexcept { return team_ == nullptr; }
    /// @brief Number of writer threads (0 when empty).
    [[nodiscard]] unsigned threads() const noexcept { return team_ ? team_->size() : 0u; }
    /// @brief The options in force (an empty producer keeps those it had).
    [[nodiscard]] const produce_options& options() const noexcept { return opt_; }
    /// @brief Bytes of the staging ring (0 until a fill needed it, and when empty).
    [[nodiscard]] std::uint64_t ring_bytes() const noexcept { return ring_ ? ring_->size() : 0; }
    /// @brief The staging ring's last copy (a staged fill waits for it before it rewrites the
    /// ring), or nothing (no ring yet, or nothing pending). Not while a fill runs.
    [[nodiscard]] std::optional<fence_type> staging_fence() const noexcept { return ring_last_; }
    /// @brief Which path `fill(buf, ...)` would take now, and why.
    /// @throws std::system_error invalid_argument (an empty producer or buffer, a buffer of
    ///         another backend object)
    template <class Buf>
    [[nodiscard]] produce_plan plan(const Buf& buf) const {
        static_assert(detail::producer_fillable<Buf>,
                      "unibuf: producer::plan takes a unibuf buffer (basic_buffer or a pool slice) of the "
                      "producer's backend (rule R17)");
        if constexpr (detail::producer_fillable<Buf>) {
            static_assert(std::is_same_v<typename Buf::backend_type, B>,
                          "unibuf: producer<B>::plan: the buffer lives on another backend type than the producer's; "
                          "a producer fills only buffers of its own backend (rule R17)");
            if constexpr (std::is_same_v<typename Buf::backend_type, B>) {
                check_usable("plan", buf);
                using T = typename Buf::value_type;
                const auto layout = detail::fill_layout::of(buf.size(), sizeof(T), opt_.grain_bytes, opt_.chunk_bytes);
                return choose(buf.allocation(), buf.size_bytes(), writers_for(layout.grains));
            }
        }
        return {};
    }

    /// @brief Fills all of `buf`: `fn(write_only_view<T> out, std::size_t first)` is called on the
    /// writer threads for disjoint runs of elements `[first, first + out.size())` covering the
    /// buffer, and must store every element of `out`. Returns when the last writer call returned
    /// and every transfer is queued; the result's fence (also the buffer's last use) completes when
    /// the device sees the data. Waits (bounded) for the buffer's previous device use first.
    /// On an exception from `fn` the fill stops: no more grains are handed out, queued copies are
    /// waited for (bounded), and the first exception is rethrown; the buffer then holds a partial
    /// fill (host-dirty under lazy). Without exceptions (`UNIBUF_EXCEPTIONS` 0) `fn` cannot throw,
    /// and a failed wait stops the fill the same way, then aborts with its message (core/config.hpp).
    /// Nothing is changed when the fill is rejected before it starts (an empty producer or
    /// buffer, another backend object, a staging ring too large): the buffer, the ring and the
    /// producer are as before.
    /// @throws std::system_error timeout (a device wait ran past `produce_options::wait_timeout`),
    ///         out_of_memory (the staging ring), capacity_exceeded (a ring of `ring_chunks` chunks
    ///         of this element type passes 2^64 bytes), invalid_argument (an empty producer or
    ///         buffer, a buffer of another backend object), errors of the backend's copies;
    ///         whatever `fn` throws
    template <class Buf, class Fn>
    produce_result<fence_type> fill(Buf& buf, Fn&& fn) {
        // Each rule is checked once; past a failed one nothing else is compiled (one error).
        static_assert(detail::producer_fillable<Buf>,
                      "unibuf: producer::fill takes a unibuf buffer (basic_buffer or a pool slice) of the "
                      "producer's backend (rule R17)");
        if constexpr (detail::producer_fillable<Buf>) {
            static_assert(std::is_same_v<typename Buf::backend_type, B>,
                          "unibuf: producer<B>::fill: the buffer lives on another backend type than the producer's; "
                          "a producer fills only buffers of its own backend (rule R17)");
            if constexpr (std::is_same_v<typename Buf::backend_type, B>) {
                static_assert(HostWritable<Buf>, "unibuf: producer::fill writes the buffer, but its access policy is "
                                                 "access::read_only (rule R8)");
                if constexpr (HostWritable<Buf>) {
                    using T = typename Buf::value_type;
                    constexpr bool callable = std::is_invocable_v<Fn&, write_only_view<T>, std::size_t>;
                    static_assert(callable,
                                  "unibuf: producer::fill calls its writer function as fn(unibuf::write_only_view<T> "
                                  "out, std::size_t first) on the writer threads, with T the buffer's element type; "
                                  "this function cannot be called so (rule R19)");
                    if constexpr (callable) return fill_impl(buf, fn);
                }
            }
        }
        return {};
    }

#if UNIBUF_EXCEPTIONS
    /// @brief `fill(buf, fn)` without waiting for it: the fill runs on the producer's fill thread
    /// (started on the first call, one fill at a time, in call order), which then calls
    /// `done(result, error)` there: the result, or an empty optional and the exception the fill
    /// threw. The hook the async layer's `fill_async` (async/fill_awaitable.hpp) builds on: the
    /// waits inside the fill (a staging-ring chunk's copy, the writers' last grains, the buffer's
    /// previous device use) block the fill thread, not the caller. `buf` and `fn` must live until
    /// `done` is called; no other fill of this producer (nor a move of it) may run meanwhile. The
    /// destructor waits for a fill in progress. Not for GL buffers: the fill's backend calls would
    /// leave the context thread.
    /// @throws std::system_error invalid_argument (an empty producer), resource errors when the
    ///         fill thread cannot start (then `done` is never called)
    template <class Buf, class Fn, class Done>
        requires std::invocable<Done&, std::optional<produce_result<fence_type>>, std::exception_ptr>
    void fill_detached(Buf& buf, Fn& fn, Done done) {
        if (team_ == nullptr)
            throw_error(errc::invalid_argument, "unibuf: producer::fill_detached on an empty (moved-from) producer");
        if (!filler_) filler_ = std::make_unique<detail::fill_thread>();
        filler_->post([this, &buf, &fn, done = std::move(done)]() mutable {
            std::optional<produce_result<fence_type>> r;
            std::exception_ptr err;
            try {
                r.emplace(fill(buf, fn));
            } catch (...) {
                err = std::current_exception();
            }
            done(std::move(r), std::move(err));
        });
    }
#endif

private:
    // One fill, step by step: plan the path, cut the buffer into grains and chunks, prepare where
    // the writers store, run the writers and the coordinator, then finish (or fail) the fill.
    template <class Buf, class Fn>
    produce_result<fence_type> fill_impl(Buf& buf, Fn& fn) {
        using T = typename Buf::value_type;
        check_usable("fill", buf);
        const detail::fill_layout layout =
            detail::fill_layout::of(buf.size(), sizeof(T), opt_.grain_bytes, opt_.chunk_bytes);
        produce_result<fence_type> res = start_result(buf, writers_for(layout.grains));
        res.grains = layout.grains;
        const detail::fill_target<allocation_type> target = prepare_target(buf, res.path, layout, sizeof(T));
        detail::fill_job<B, T, Fn> job(*backend_, fn, layout, target, opt_.wait_timeout);
        job.run(*team_, res.threads);
        if (job.failed()) {
            finish_failed(buf, job.copies());
            job.raise();
        }
        return finish(buf, std::move(res), job, target);
    }

    // The result so far: threads, bytes, and the path and why (`choose`).
    template <class Buf>
    produce_result<fence_type> start_result(const Buf& buf, unsigned writers) const {
        produce_result<fence_type> res;
        res.threads = writers;
        res.bytes = buf.size_bytes();
        produce_plan p = choose(buf.allocation(), res.bytes, writers);
        res.path = p.path;
        res.reason = std::move(p.reason);
        return res;
    }

    // Where the writers store: zero-copy memory on the staged path goes through the producer's
    // ring (made or reused first, so that a ring that cannot be had changes nothing),
    // placement::device memory through its own staging buffer, the direct path into the mapping.
    // Waits (bounded) for the buffer's previous device use.
    template <class Buf>
    detail::fill_target<allocation_type> prepare_target(Buf& buf, produce_path path, const detail::fill_layout& layout,
                                                        std::size_t elem) {
        detail::fill_target<allocation_type> t;
        t.dest = &buf.allocation();
        t.base = buf.byte_offset();
        t.pipelined = path == produce_path::staged_pipelined;
        const bool use_ring = t.pipelined && t.dest->report().zero_copy;
        if (use_ring) ensure_ring(layout.chunk, elem);
        t.ring_slots = use_ring ? opt_.ring_chunks : layout.chunks;
        t.host = buf.begin_fill();  // waits for the previous device use
        if (use_ring) {
            t.ring = &*ring_;
            t.ring_host = ring_->host_data();
        }
        return t;
    }

    // The fence after which the device sees the data (the last chunk's copy when pipelined, else
    // the flush of the whole range: nothing on coherent zero-copy memory) becomes the buffer's
    // last use, and the ring's; the result takes the job's counts.
    template <class Buf, class Job>
    produce_result<fence_type> finish(Buf& buf, produce_result<fence_type> res, const Job& job,
                                      const detail::fill_target<allocation_type>& target) {
        fence_type last{};
        if (target.pipelined) {
            if (!job.copies().empty()) last = job.copies().back();
        } else {
            last = backend_->flush(*target.dest, target.base, res.bytes);
        }
        if (target.ring != nullptr) ring_last_ = last;
        buf.end_fill(last, true);
        res.fence = last;
        res.copies = job.copies().size();
        res.submissions = job.submissions();
        res.slot_waits = job.slot_waits();
        return res;
    }

    /// Rejects, before anything is changed, a fill or plan that cannot run.
    template <class Buf>
    void check_usable(const char* what, const Buf& buf) const {
        if (team_ == nullptr)
            throw_error(errc::invalid_argument, std::string("unibuf: producer::") + what +
                                                    " on an empty (moved-from) producer");
        if (buf.empty())
            throw_error(errc::invalid_argument, std::string("unibuf: producer::") + what +
                                                    " of an empty (moved-from) buffer");
        if (&buf.backend() != backend_)
            throw_error(errc::invalid_argument, std::string("unibuf: producer::") + what +
                                                    ": the buffer lives on another backend object than this producer's");
    }

    /// Throws capacity_exceeded when `ring_chunks` chunks of `chunk` elements of `elem` bytes
    /// (each at most 2^64 - 1 bytes) do not fit in 2^64 bytes.
    void check_ring_size(std::uint64_t chunk, std::uint64_t elem) const {
        std::uint64_t chunk_bytes = 0, ring_bytes = 0;
        if (detail::checked_mul(chunk, elem, chunk_bytes) &&
            detail::checked_mul(chunk_bytes, opt_.ring_chunks, ring_bytes))
            return;
        throw_error(errc::capacity_exceeded,
                    "unibuf: producer: a staging ring of " + std::to_string(opt_.ring_chunks) + " chunks of " +
                        detail::elements_text(chunk, elem) +
                        " is more than 2^64 bytes; lower produce_options::ring_chunks or chunk_bytes");
    }

    /// The backend's decision where it has one (`plan_produce`); else memory without a mapping is
    /// staged and mapped memory written directly. `force` applies to mapped memory only.
    produce_plan choose(const allocation_type& a, std::uint64_t bytes, unsigned writers) const {
        const bool staged = !a.report().zero_copy;
        if (opt_.force && !staged)
            return {*opt_.force, "forced by produce_options::force (" + std::string(to_string(*opt_.force)) + ")"};
        if constexpr (ProducePlanner<B>) {
            return backend_->plan_produce(a, bytes, writers);
        } else if (staged) {
            return {produce_path::staged_pipelined,
                    "the buffer's device memory has no host mapping: the writers fill its staging buffer and each "
                    "chunk is copied as soon as it is complete"};
        } else {
            return {produce_path::direct, "zero-copy memory: the writers store into the buffer's mapping"};
        }
    }

    /// Writers of a fill of `grains` grains: enough to give each `min_grains_per_writer` grains,
    /// at least one, at most the team.
    [[nodiscard]] unsigned writers_for(std::size_t grains) const noexcept {
        const std::size_t per = opt_.min_grains_per_writer;
        const std::size_t want = std::max<std::size_t>(1, grains / per + (grains % per != 0 ? 1 : 0));
        return static_cast<unsigned>(std::min<std::size_t>(team_->size(), want));
    }

    /// Makes a ring of at least `ring_chunks` chunks of `chunk` elements of `elem` bytes whose
    /// previous copies are complete. A size past 2^64 is rejected before anything changes.
    void ensure_ring(std::uint64_t chunk, std::uint64_t elem) {
        check_ring_size(chunk, elem);
        const std::uint64_t want = chunk * elem * opt_.ring_chunks;
        if (ring_ && ring_last_ && !backend_->wait(*ring_last_, opt_.wait_timeout))
            throw_error(errc::timeout, "unibuf: producer: the staging ring's last copy (of the previous fill) did not "
                                       "complete within " + detail::ms_text(opt_.wait_timeout) + " ms");
        ring_last_.reset();
        if (ring_ && ring_->size() >= want) return;
        ring_.reset();
        memory_request r;
        r.size_bytes = want;
        r.placement = placement_kind::host;
        r.host_read = false;
        r.host_write = true;
        r.write_combined = true;
        r.sync = sync_kind::fenced;
        r.device_write = false;
        ring_.emplace(backend_->allocate(r));
    }

    // Waits for a detached fill in progress (its thread runs it to its end, bounded by its own
    // waits), then (bounded) for the ring's last copy, then frees the ring and stops the threads.
    void release() noexcept {
        filler_.reset();
        if (backend_ != nullptr && ring_ && ring_last_) {
#if UNIBUF_EXCEPTIONS
            try {
                (void)backend_->wait(*ring_last_, opt_.wait_timeout);
            } catch (...) {
                // GL off the context thread, a lost device: nothing more can be done here
            }
#else
            (void)backend_->wait(*ring_last_, opt_.wait_timeout);
#endif
        }
        ring_.reset();
        ring_last_.reset();
        team_.reset();
        backend_ = nullptr;
    }

    template <class Buf>
    void finish_failed(Buf& buf, const std::vector<fence_type>& copies) noexcept {
        // Queued copies still read the staging memory: let them finish before anything reuses it.
        if (!copies.empty()) {
            // Past the bound the copies are still recorded as the buffer's last use (and the
            // ring's), so nothing frees or rewrites the memory they read without waiting again.
#if UNIBUF_EXCEPTIONS
            try {
                (void)backend_->wait(copies.back(), opt_.wait_timeout);
            } catch (...) {
                // a lost device: the fill's own error is the one the caller gets
            }
#else
            (void)backend_->wait(copies.back(), opt_.wait_timeout);
#endif
            ring_last_ = copies.back();
            buf.end_fill(copies.back(), false);
        } else {
            buf.end_fill(fence_type{}, false);
        }
    }

    B* backend_;
    produce_options opt_;
    std::unique_ptr<writer_team> team_;  // null when empty (moved from)
    std::optional<allocation_type> ring_;
    std::optional<fence_type> ring_last_;  // the last copy out of the ring
    // The thread of detached fills (null until the first; release() resets it before the members
    // above: a fill in progress uses them).
    std::unique_ptr<detail::fill_thread> filler_;
};

} // namespace unibuf
