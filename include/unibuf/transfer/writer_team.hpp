/// @file writer_team.hpp
/// @brief `writer_team`: a fixed team of threads that run one job at a time, the threads behind
/// `producer` (started once, reused by every fill).
#pragma once

#include "../core/config.hpp"
#include "../core/detail/cpu_relax.hpp"
#include "../core/error.hpp"
#include "../core/timeout.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#if UNIBUF_EXCEPTIONS
#  include <exception>
#endif

namespace unibuf {

/// @brief A fixed team of threads that run one job at a time (no thread start per job).
///
/// Between jobs a thread spins for `spin` (default 50 µs) on the job counter before it sleeps in
/// an atomic wait, so back-to-back fills start without a wake-up per thread (waking sleeping
/// threads one after another costs as much as a small fill's writing; measured: see
/// bench/RESULTS.md); idle teams sleep. Jobs are published and finished through atomics (no mutex
/// to re-acquire per thread).
///
/// Neither copyable nor movable (its threads refer to it), so a team is never empty: it has its
/// threads from construction to destruction.
class writer_team {
public:
    /// @brief Starts `threads` threads that spin for `spin` between jobs (any duration; a huge one
    /// spins until the next job, it never overflows the clock).
    /// @throws std::system_error invalid_argument for 0 threads
    explicit writer_team(unsigned threads, std::chrono::nanoseconds spin = std::chrono::microseconds(50)) : spin_(spin) {
        if (threads == 0) throw_error(errc::invalid_argument, "unibuf: writer_team of 0 threads; ask for at least 1");
        threads_.reserve(threads);
        for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this, i] { loop(i); });
    }
    writer_team(const writer_team&) = delete;
    writer_team& operator=(const writer_team&) = delete;
    /// @brief Stops and joins the threads (a job in progress finishes first).
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
    /// @throws whatever `caller` throws
    template <class Job, class Caller>
    void run(Job&& job, Caller&& caller) {
        const std::function<void(unsigned)> f = std::forward<Job>(job);
        job_ = &f;
        pending_.store(size(), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);  // publishes job_
        generation_.notify_all();
#if UNIBUF_EXCEPTIONS
        std::exception_ptr err;
        try {
            caller();
        } catch (...) {
            err = std::current_exception();
        }
        wait_for_jobs();
        if (err) std::rethrow_exception(err);
#else
        caller();
        wait_for_jobs();
#endif
    }

private:
    void wait_for_jobs() noexcept {
        for (std::uint32_t p = pending_.load(std::memory_order_acquire); p != 0; p = pending_.load(std::memory_order_acquire))
            pending_.wait(p, std::memory_order_acquire);
        job_ = nullptr;
    }

    void loop(unsigned i) {
        std::uint64_t seen = 0;
        for (;;) {
            std::uint64_t g = generation_.load(std::memory_order_acquire);
            const auto spin_end = detail::deadline_after(spin_);
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

} // namespace unibuf
