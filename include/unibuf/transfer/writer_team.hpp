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
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#if UNIBUF_EXCEPTIONS
#  include <exception>
#endif

namespace unibuf {

/// @brief A fixed team of threads that run one job at a time (no thread start per job).
///
/// Between jobs a thread spins for `spin` (default 50 µs) on its own job counter before it sleeps
/// in an atomic wait, so back-to-back fills start without a wake-up per thread (waking sleeping
/// threads one after another costs as much as a small fill's writing; measured: see
/// bench/RESULTS.md); idle teams sleep. A job names how many threads it needs: only those are
/// handed the job (and woken), so a small fill does not pay for waking writers it has no work for.
/// Jobs are published and finished through atomics (no mutex to re-acquire per thread).
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
        go_ = std::make_unique<counter[]>(threads);
        threads_.reserve(threads);
        for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this, i] { loop(i); });
    }
    writer_team(const writer_team&) = delete;
    writer_team& operator=(const writer_team&) = delete;
    /// @brief Stops and joins the threads (a job in progress finishes first).
    ~writer_team() {
        stop_.store(true, std::memory_order_relaxed);
        for (unsigned i = 0; i < size(); ++i) {
            go_[i].value.fetch_add(1, std::memory_order_release);
            go_[i].value.notify_one();
        }
        for (auto& t : threads_) t.join();
    }

    /// @brief Number of threads.
    [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()); }

    /// @brief Runs `job(i)` on threads i = 0 .. `threads` - 1 (all when 0 or more than the team
    /// has; the job must not throw) while `caller()` runs on this thread, and returns when all of
    /// them finished. The other threads are not woken. An exception of `caller` is rethrown after
    /// the jobs finished (the caller must make them stop). Not reentrant: one job at a time.
    /// @throws whatever `caller` throws
    template <class Job, class Caller>
    void run(Job&& job, Caller&& caller, unsigned threads = 0) {
        const std::function<void(unsigned)> f = std::forward<Job>(job);
        const unsigned n = (threads == 0 || threads > size()) ? size() : threads;
        job_ = &f;
        pending_.store(n, std::memory_order_relaxed);
        for (unsigned i = 0; i < n; ++i) {
            go_[i].value.fetch_add(1, std::memory_order_release);  // publishes job_ to thread i
            go_[i].value.notify_one();
        }
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
        std::atomic<std::uint64_t>& go = go_[i].value;
        std::uint64_t seen = 0;
        for (;;) {
            std::uint64_t g = go.load(std::memory_order_acquire);
            const auto spin_end = detail::deadline_after(spin_);
            while (g == seen && std::chrono::steady_clock::now() < spin_end) {
                for (int k = 0; k < 32; ++k) detail::cpu_relax();
                g = go.load(std::memory_order_acquire);
            }
            while (g == seen) {
                go.wait(seen, std::memory_order_acquire);
                g = go.load(std::memory_order_acquire);
            }
            seen = g;
            if (stop_.load(std::memory_order_relaxed)) return;
            (*job_)(i);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_all();
        }
    }

    // One job counter per thread, each on its own cache line: a job wakes only the threads it uses.
    struct alignas(64) counter {
        std::atomic<std::uint64_t> value{0};
    };

    std::chrono::nanoseconds spin_;
    std::unique_ptr<counter[]> go_;
    std::atomic<std::uint32_t> pending_{0};
    std::atomic<bool> stop_{false};
    const std::function<void(unsigned)>* job_ = nullptr;  // written before generation_ is bumped
    std::vector<std::thread> threads_;
};

} // namespace unibuf
