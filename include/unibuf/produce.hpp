/// @file produce.hpp
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
#pragma once

#include "buffer.hpp"
#include "concepts.hpp"
#include "detail/cpu_relax.hpp"
#include "error.hpp"
#include "view.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief A fixed team of threads that run one job at a time (no thread start per job).
///
/// Between jobs a thread spins for `spin` (default 50 µs) on the job counter before it sleeps in
/// an atomic wait, so back-to-back fills start without a wake-up per thread (on the H100 VM,
/// waking 16 sleeping threads one after another cost about as much as writing 4 MiB); idle teams
/// sleep. Jobs are published and finished through atomics (no mutex to re-acquire per thread).
class writer_team {
public:
    /// @throws std::system_error invalid_argument for 0 threads
    explicit writer_team(unsigned threads, std::chrono::nanoseconds spin = std::chrono::microseconds(50)) : spin_(spin) {
        if (threads == 0) throw_error(errc::invalid_argument, "unibuf: writer_team of 0 threads; ask for at least 1");
        threads_.reserve(threads);
        for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this, i] { loop(i); });
    }
    writer_team(const writer_team&) = delete;
    writer_team& operator=(const writer_team&) = delete;
    ~writer_team() {
        stop_.store(true, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        for (auto& t : threads_) t.join();
    }

    /// @brief Number of threads.
    [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()); }

    /// @brief Runs `job(i)` on every thread i (it must not throw) while `caller()` runs on this
    /// thread, and returns when all of them finished. An exception of `caller` is rethrown after
    /// the jobs finished (the caller must make them stop). Not reentrant: one job at a time.
    template <class Job, class Caller>
    void run(Job&& job, Caller&& caller) {
        const std::function<void(unsigned)> f = std::forward<Job>(job);
        job_ = &f;
        pending_.store(size(), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);  // publishes job_
        generation_.notify_all();
        std::exception_ptr err;
        try {
            caller();
        } catch (...) {
            err = std::current_exception();
        }
        for (std::uint32_t p = pending_.load(std::memory_order_acquire); p != 0; p = pending_.load(std::memory_order_acquire))
            pending_.wait(p, std::memory_order_acquire);
        job_ = nullptr;
        if (err) std::rethrow_exception(err);
    }

private:
    void loop(unsigned i) {
        std::uint64_t seen = 0;
        for (;;) {
            std::uint64_t g = generation_.load(std::memory_order_acquire);
            const auto spin_end = std::chrono::steady_clock::now() + spin_;
            while (g == seen && std::chrono::steady_clock::now() < spin_end) {
                for (int k = 0; k < 32; ++k) detail::cpu_relax();
                g = generation_.load(std::memory_order_acquire);
            }
            while (g == seen) {
                generation_.wait(seen, std::memory_order_acquire);
                g = generation_.load(std::memory_order_acquire);
            }
            seen = g;
            if (stop_.load(std::memory_order_relaxed)) return;
            (*job_)(i);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_all();
        }
    }

    std::chrono::nanoseconds spin_;
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<std::uint32_t> pending_{0};
    std::atomic<bool> stop_{false};
    const std::function<void(unsigned)>* job_ = nullptr;  // written before generation_ is bumped
    std::vector<std::thread> threads_;
};

/// @brief Grain and chunk sizes of a fill, and an optional override of the backend's path choice.
struct produce_options {
    /// @brief Bytes per writer call (rounded down to whole elements, at least one).
    std::size_t grain_bytes = std::size_t{256} << 10;
    /// @brief Bytes per staging copy (rounded down to whole grains, at least one).
    std::size_t chunk_bytes = std::size_t{8} << 20;
    /// @brief Chunks in the producer's staging ring (zero-copy buffers on the staged path): with
    /// the default chunk, 64 MiB of host memory, allocated on the first staged fill and kept.
    std::size_t ring_chunks = 8;
    /// @brief Bound on each device wait of a fill (a ring chunk still being copied out, the
    /// previous fill's last copy); past it the fill fails with errc::timeout naming the wait.
    std::chrono::nanoseconds wait_timeout = default_wait_timeout;
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
    unsigned threads = 0;        ///< writer threads
    std::size_t grains = 0;      ///< writer calls
    std::size_t copies = 0;      ///< chunks copied from staging (0 on the direct path)
    std::size_t submissions = 0;  ///< device submissions those copies took (complete chunks are batched)
    std::size_t slot_waits = 0;  ///< times a writer waited for a staging-ring chunk to be copied out
};

/// @brief A team of writer threads plus, on first need, a staging ring; fills buffers of
/// backend `B` (see the file comment).
template <Backend B>
class producer {
public:
    using backend_type = B;
    using fence_type = typename B::fence;
    using allocation_type = typename B::allocation;

    /// @brief `threads` writer threads for the fills of buffers on `backend`.
    /// @throws std::system_error invalid_argument (0 threads, a zero grain/chunk/ring size)
    producer(B& backend, unsigned threads, produce_options opt = {}) : backend_(&backend), opt_(opt), team_(threads) {
        if (opt_.grain_bytes == 0 || opt_.chunk_bytes == 0 || opt_.ring_chunks == 0)
            throw_error(errc::invalid_argument, "unibuf: producer: grain_bytes, chunk_bytes and ring_chunks must be > 0 (got " +
                                                    std::to_string(opt_.grain_bytes) + ", " +
                                                    std::to_string(opt_.chunk_bytes) + ", " +
                                                    std::to_string(opt_.ring_chunks) + ")");
    }
    producer(const producer&) = delete;
    producer& operator=(const producer&) = delete;
    /// @brief Waits (bounded) for the staging ring's last copies before freeing it.
    ~producer() {
        if (ring_ && ring_last_) (void)backend_->wait(*ring_last_, default_wait_timeout);
    }

    /// @brief Number of writer threads.
    [[nodiscard]] unsigned threads() const noexcept { return team_.size(); }
    /// @brief The options in force.
    [[nodiscard]] const produce_options& options() const noexcept { return opt_; }
    /// @brief Bytes of the staging ring (0 until a fill needed it).
    [[nodiscard]] std::uint64_t ring_bytes() const noexcept { return ring_ ? ring_->size() : 0; }
    /// @brief Which path `fill(buf, ...)` would take now, and why.
    template <class Buf>
    [[nodiscard]] produce_plan plan(const Buf& buf) const {
        return choose(buf.allocation(), buf.size_bytes());
    }

    /// @brief Fills all of `buf`: `fn(write_only_view<T> out, std::size_t first)` is called on the
    /// writer threads for disjoint runs of elements `[first, first + out.size())` covering the
    /// buffer, and must store every element of `out`. Returns when the last writer call returned
    /// and every transfer is queued; the result's fence (also the buffer's last use) completes when
    /// the device sees the data. Waits (bounded) for the buffer's previous device use first.
    /// On an exception from `fn` the fill stops: no more grains are handed out, queued copies are
    /// waited for (bounded), and the first exception is rethrown; the buffer then holds a partial
    /// fill (host-dirty under lazy).
    /// @throws std::system_error timeout (a device wait ran past `produce_options::wait_timeout`),
    ///         out_of_memory (the staging ring), errors of the backend's copies; whatever `fn` throws
    template <class Buf, class Fn>
        requires std::same_as<typename Buf::backend_type, B>
    produce_result<fence_type> fill(Buf& buf, Fn&& fn) {
        static_assert(Buf::host_writable,
                      "unibuf: producer::fill writes the buffer, but its access policy is access::read_only (rule R8)");
        using T = typename Buf::value_type;
        if (&buf.backend() != backend_)
            throw_error(errc::invalid_argument, "unibuf: producer::fill: the buffer lives on another backend object "
                                                "than this producer's");
        produce_result<fence_type> res;
        res.threads = team_.size();
        res.bytes = buf.size_bytes();
        allocation_type& a = buf.allocation();
        const std::uint64_t base = buf.byte_offset();
        const std::size_t n = buf.size();
        produce_plan p = choose(a, res.bytes);
        res.path = p.path;
        res.reason = std::move(p.reason);

        const std::size_t grain = std::max<std::size_t>(1, opt_.grain_bytes / sizeof(T));
        const std::size_t chunk = grain * std::max<std::size_t>(1, opt_.chunk_bytes / (grain * sizeof(T)));
        const std::size_t grains = (n + grain - 1) / grain;
        const std::size_t chunks = (n + chunk - 1) / chunk;
        const std::size_t grains_per_chunk = chunk / grain;
        res.grains = grains;

        // Zero-copy memory on the staged path goes through the producer's ring; placement::device
        // memory through its own staging buffer.
        const bool use_ring = p.path == produce_path::staged_pipelined && a.report().zero_copy;
        if (use_ring) ensure_ring(chunk * sizeof(T));
        const std::size_t ring_slots = use_ring ? opt_.ring_chunks : chunks;
        std::byte* const host = buf.begin_fill();  // waits for the previous device use
        std::byte* const ring_host = use_ring ? ring_->host_data() : nullptr;

        // Shared between the writers and this thread.
        struct shared_state {
            std::atomic<std::size_t> next{0};
            std::atomic<bool> stop{false};
            std::unique_ptr<std::atomic<std::size_t>[]> done;  // grains written per chunk
            std::mutex m;
            std::condition_variable coord_cv, slot_cv;
            std::size_t released = 0;      // chunks whose ring slot is free again (guarded by m)
            std::size_t waiting = 0;       // writers waiting for a slot (guarded by m)
            std::size_t slot_waits = 0;    // guarded by m
            std::exception_ptr error;      // first writer error (guarded by m)
        } st;
        st.done = std::make_unique<std::atomic<std::size_t>[]>(std::max<std::size_t>(chunks, 1));
        for (std::size_t c = 0; c < chunks; ++c) st.done[c].store(0, std::memory_order_relaxed);
        auto grains_in = [&](std::size_t c) {
            return std::min(grains_per_chunk, grains - c * grains_per_chunk);
        };
        const auto timeout = opt_.wait_timeout;
        const bool pipelined = p.path == produce_path::staged_pipelined;

        // Waits (bounded) until the ring slot of chunk c no longer holds chunk c - ring_slots,
        // whose copy the coordinator waits for once a writer waits here.
        auto wait_for_slot = [&](std::size_t c) {
            if (c < ring_slots) return;
            std::unique_lock lk(st.m);
            if (st.released > c - ring_slots) return;
            ++st.waiting;
            ++st.slot_waits;
            st.coord_cv.notify_one();
            const bool ok = st.slot_cv.wait_for(lk, timeout, [&] {
                return st.released > c - ring_slots || st.stop.load(std::memory_order_relaxed);
            });
            --st.waiting;
            if (!ok)
                throw_error(errc::timeout, "unibuf: producer: staging chunk " + std::to_string(c % ring_slots) +
                                               " was not free within " + detail::ms_text(timeout) +
                                               " ms (its copy of chunk " + std::to_string(c - ring_slots) +
                                               " is still pending)");
        };

        auto writer = [&](unsigned) {
            for (;;) {
                if (st.stop.load(std::memory_order_acquire)) return;
                const std::size_t g = st.next.fetch_add(1, std::memory_order_relaxed);
                if (g >= grains) return;
                const std::size_t first = g * grain;
                const std::size_t count = std::min(grain, n - first);
                const std::size_t c = first / chunk;
                try {
                    std::byte* dst = host + first * sizeof(T);
                    if (use_ring) {
                        wait_for_slot(c);
                        if (st.stop.load(std::memory_order_relaxed)) return;
                        dst = ring_host + (c % ring_slots) * chunk * sizeof(T) + (first - c * chunk) * sizeof(T);
                    }
                    fn(write_only_view<T>(reinterpret_cast<T*>(dst), count), first);
                } catch (...) {  // the writer's own error, or a slot wait that ran out
                    std::lock_guard lk(st.m);
                    if (!st.error) st.error = std::current_exception();
                    st.stop.store(true, std::memory_order_release);
                    st.coord_cv.notify_one();
                    st.slot_cv.notify_all();
                    return;
                }
                if (pipelined && st.done[c].fetch_add(1, std::memory_order_acq_rel) + 1 == grains_in(c)) {
                    std::lock_guard lk(st.m);  // notify under the lock: the coordinator may be about to sleep
                    st.coord_cv.notify_one();
                }
            }
        };

        std::vector<fence_type> copies;  // one per chunk, in queue order (chunks of one submission share it)
        copies.reserve(chunks);
        std::size_t submissions = 0;
        // Queues the copies of chunks [from, to): one submission where the backend records several
        // commands into one (Vulkan batch: one barrier and one signal for all), else one each.
        auto submit_chunks = [&](std::size_t from, std::size_t to) {
            auto range = [&](std::size_t c) {
                return std::pair{static_cast<std::uint64_t>(c) * chunk * sizeof(T),
                                 static_cast<std::uint64_t>(std::min(chunk, n - c * chunk)) * sizeof(T)};
            };
            auto slot_off = [&](std::size_t c) { return static_cast<std::uint64_t>(c % ring_slots) * chunk * sizeof(T); };
            if (use_ring)
                for (std::size_t c = from; c < to; ++c)
                    (void)backend_->flush(*ring_, slot_off(c), range(c).second);  // non-coherent staging memory
            fence_type f{};
            if constexpr (requires(B& b, allocation_type& x) {
                              b.begin().copy(x, 0, x, 0, 0);
                              b.begin().upload(x, 0, 0);
                              { b.begin().submit() } -> std::same_as<fence_type>;
                          }) {
                auto batch = backend_->begin();
                for (std::size_t c = from; c < to; ++c) {
                    const auto [off, len] = range(c);
                    if (use_ring) {
                        batch.copy(*ring_, slot_off(c), a, base + off, len);
                    } else {
                        batch.upload(a, base + off, len);  // the allocation's own staging -> device
                    }
                }
                f = batch.submit();
                ++submissions;
            } else {
                for (std::size_t c = from; c < to; ++c) {
                    const auto [off, len] = range(c);
                    f = use_ring ? backend_->copy(*ring_, slot_off(c), a, base + off, len) : backend_->flush(a, base + off, len);
                    ++submissions;
                }
            }
            copies.resize(to, f);
        };
        auto coordinator = [&] {
            if (!pipelined) return;
            std::size_t submitted = 0;
            for (;;) {
                std::unique_lock lk(st.m);
                st.coord_cv.wait(lk, [&] {
                    return st.stop.load(std::memory_order_relaxed) || submitted == chunks ||
                           st.done[submitted].load(std::memory_order_acquire) == grains_in(submitted) ||
                           (st.waiting > 0 && st.released < submitted);
                });
                if (st.stop.load(std::memory_order_relaxed) || submitted == chunks) return;
                if (st.done[submitted].load(std::memory_order_acquire) == grains_in(submitted)) {
                    lk.unlock();
                    // Every chunk complete by now goes into this submission.
                    std::size_t to = submitted + 1;
                    while (to < chunks && st.done[to].load(std::memory_order_acquire) == grains_in(to)) ++to;
                    submit_chunks(submitted, to);
                    submitted = to;
                    continue;
                }
                // A writer waits for the slot of the oldest chunk still in flight: wait for its copy.
                std::size_t c = st.released;
                lk.unlock();
                if (!backend_->wait(copies[c], timeout))
                    throw_error(errc::timeout, "unibuf: producer: the staging copy of chunk " + std::to_string(c) +
                                                   " did not complete within " +
                                                   detail::ms_text(timeout) + " ms");
                ++c;
                while (c < submitted && backend_->is_complete(copies[c])) ++c;  // its batch, and any done since
                lk.lock();
                st.released = c;
                st.slot_cv.notify_all();
            }
        };

        auto stop_writers = [&] {
            std::lock_guard lk(st.m);
            st.stop.store(true, std::memory_order_release);
            st.slot_cv.notify_all();
        };
        try {
            team_.run(writer, [&] {
                try {
                    coordinator();
                } catch (...) {
                    stop_writers();
                    throw;
                }
            });
        } catch (...) {
            finish_failed(buf, copies);
            throw;
        }
        if (st.error) {
            finish_failed(buf, copies);
            std::rethrow_exception(st.error);
        }
        fence_type last{};
        if (pipelined) {
            if (!copies.empty()) last = copies.back();
        } else {
            last = backend_->flush(a, base, res.bytes);  // non-coherent: flush; coherent zero-copy: nothing
        }
        if (use_ring) ring_last_ = last;
        buf.end_fill(last, true);
        res.fence = last;
        res.copies = copies.size();
        res.submissions = submissions;
        res.slot_waits = st.slot_waits;
        return res;
    }

private:
    /// The backend's decision where it has one (`plan_produce`); else memory without a mapping is
    /// staged and mapped memory written directly. `force` applies to mapped memory only.
    produce_plan choose(const allocation_type& a, std::uint64_t bytes) const {
        const bool staged = !a.report().zero_copy;
        if (opt_.force && !staged)
            return {*opt_.force, "forced by produce_options::force (" + std::string(to_string(*opt_.force)) + ")"};
        if constexpr (requires(const B& b, const allocation_type& al) {
                          { b.plan_produce(al, std::uint64_t{}, 1u) } -> std::convertible_to<produce_plan>;
                      }) {
            return backend_->plan_produce(a, bytes, team_.size());
        } else if (staged) {
            return {produce_path::staged_pipelined,
                    "the buffer's device memory has no host mapping: the writers fill its staging buffer and each "
                    "chunk is copied as soon as it is complete"};
        } else {
            return {produce_path::direct, "zero-copy memory: the writers store into the buffer's mapping"};
        }
    }

    /// Makes a ring of at least `ring_chunks` chunks whose previous copies are complete.
    void ensure_ring(std::uint64_t chunk_bytes) {
        const std::uint64_t want = chunk_bytes * opt_.ring_chunks;
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

    template <class Buf>
    void finish_failed(Buf& buf, const std::vector<fence_type>& copies) noexcept {
        // Queued copies still read the staging memory: let them finish before anything reuses it.
        if (!copies.empty()) {
            // Past the bound the copies are still recorded as the buffer's last use (and the
            // ring's), so nothing frees or rewrites the memory they read without waiting again.
            (void)backend_->wait(copies.back(), opt_.wait_timeout);
            ring_last_ = copies.back();
            buf.end_fill(copies.back(), false);
        } else {
            buf.end_fill(fence_type{}, false);
        }
    }

    B* backend_;
    produce_options opt_;
    writer_team team_;
    std::optional<allocation_type> ring_;
    std::optional<fence_type> ring_last_;  // the last copy out of the ring
};

} // namespace unibuf
