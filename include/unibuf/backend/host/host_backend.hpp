/// @file host_backend.hpp
/// @brief A CPU "device" with its own memory, fences and an in-order work queue.
///
/// The host backend keeps device memory apart from the host view wherever a real GPU would:
/// - `placement::device` (or `options::force_staging`): host access goes through a staging area,
///   and `flush`/`invalidate` are copies queued on the device's worker thread, with fences;
/// - `coherence::explicit_flush` (with `options::simulate_non_coherent`, the default): host writes
///   reach the device copy only through `flush`, device writes reach the host only through
///   `invalidate`, both rounded to `options::non_coherent_atom` like Vulkan — a missing flush
///   makes a test fail exactly as it would on non-coherent hardware;
/// - everything else is zero-copy: the host view is the device memory.
/// Device work (`dispatch`, `copy`, staging copies) runs in submission order on one worker thread;
/// a fence completes when its work has run. Queued work keeps the memory it reads or writes alive
/// (like a GPU driver that defers a free until the work is done), so an allocation freed while
/// device work still uses it never leaves that work with freed memory. No GPU headers are involved.
///
/// @code
/// unibuf::host_backend dev;
/// unibuf::device_buffer<int, unibuf::host_backend> b(dev, 256);
/// b.fill(7);                       // host_only (staging area)
/// unibuf::host_kernel twice = [](const unibuf::host_invocation& in) {
///     auto v = in.as<int>(0); for (auto& x : v) x *= 2; };
/// unibuf::dispatch(dev, twice, {1}, {}, unibuf::bind(b));   // staged copy, then the kernel
/// auto v = b.to_vector();          // waits, copies back: all 14
/// @endcode
#pragma once

#include "../../core/detail/meta.hpp"
#include "../concepts.hpp"
#include "../detail/allocate.hpp"
#include "../detail/range_check.hpp"
#include "../detail/timeline_fence.hpp"
#include "../fault_injection.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief What a host kernel receives: its bound device memory, the group count, push constants.
struct host_invocation {
    dispatch_size groups;                            ///< the dispatch's group counts
    std::span<const std::span<std::byte>> buffers;  ///< device memory of each binding, in order
    std::span<const std::byte> push;                ///< the push-constant bytes

    /// @brief Binding `i` viewed as elements of `T`.
    /// @throws std::system_error out_of_range when the dispatch bound fewer than `i + 1` buffers
    template <class T>
    [[nodiscard]] std::span<T> as(std::size_t i) const {
        if (i >= buffers.size())
            throw_error(errc::out_of_range, "unibuf: host_invocation::as: binding " + std::to_string(i) +
                                                " of a dispatch that bound " + std::to_string(buffers.size()) +
                                                " buffer(s)");
        auto b = buffers[i];
        return {reinterpret_cast<T*>(b.data()), b.size() / sizeof(T)};
    }
    /// @brief The push constants as a `P` (zero-filled beyond the pushed bytes).
    template <class P>
    [[nodiscard]] P params() const {
        P p{};
        std::memcpy(&p, push.data(), std::min(sizeof(P), push.size()));
        return p;
    }
};

/// @brief A kernel of the host backend: any callable over a `host_invocation`.
using host_kernel = std::function<void(const host_invocation&)>;

/// @brief The CPU backend (see the file comment). Thread-safe: allocate, submit and wait from any thread.
class host_backend : public detail::allocation_entry_points<host_backend> {
    friend class detail::allocation_entry_points<host_backend>;

public:
    /// @brief Behaviour switches, mostly for tests.
    struct options {
        bool simulate_non_coherent = true;  ///< explicit_flush memory gets a separate host copy
        std::uint64_t non_coherent_atom = 64;  ///< flush/invalidate rounding, as Vulkan's nonCoherentAtomSize
        std::uint64_t min_storage_offset_alignment = 16;  ///< as Vulkan's minStorageBufferOffsetAlignment
        std::uint64_t memory_limit = std::uint64_t{4} << 30;  ///< total device bytes before out_of_memory
        bool force_staging = false;  ///< every placement staged (exercises the staging path)
        /// Fails the N-th call of a kind when armed (tests of failure paths; see fault_injection.hpp
        /// for what each point does here). Null (the default): no faults.
        std::shared_ptr<fault_injector> faults{};
    };

    /// @brief A point on the backend's timeline; complete when the work submitted as `value` ran
    /// (0: nothing to wait for). The same kind of value as `vulkan_backend::fence`, one type per backend.
    using fence = detail::timeline_fence<host_backend>;

    /// @brief One allocation: device memory plus, where the device copy is not the host view,
    /// a host copy (staging area or non-coherent cache). Move-only; returns its bytes to the backend
    /// (the memory itself lives on until queued device work that uses it has run).
    ///
    /// An empty (default-constructed or moved-from) allocation has no memory: `host_data()` and
    /// `device_data()` are null, `size()` is 0, and every backend call given it throws
    /// `errc::invalid_argument`.
    class allocation {
    public:
        allocation() = default;
        allocation(allocation&& o) noexcept
            : owner_(std::exchange(o.owner_, nullptr)), size_(std::exchange(o.size_, 0)),
              reserved_(std::exchange(o.reserved_, 0)), device_(std::move(o.device_)), shadow_(std::move(o.shadow_)), report_(std::move(o.report_)),
              staged_(std::exchange(o.staged_, false)), non_coherent_(std::exchange(o.non_coherent_, false)) {}
        allocation& operator=(allocation&& o) noexcept {
            if (this != &o) {
                release();
                owner_ = std::exchange(o.owner_, nullptr);
                size_ = std::exchange(o.size_, 0);
                reserved_ = std::exchange(o.reserved_, 0);
                device_ = std::move(o.device_);
                shadow_ = std::move(o.shadow_);
                report_ = std::move(o.report_);
                staged_ = std::exchange(o.staged_, false);
                non_coherent_ = std::exchange(o.non_coherent_, false);
            }
            return *this;
        }
        allocation(const allocation&) = delete;
        allocation& operator=(const allocation&) = delete;
        ~allocation() { release(); }

        /// @brief The host view: device memory when zero-copy, else the host copy (null when empty).
        [[nodiscard]] std::byte* host_data() const noexcept { return shadow_ ? shadow_.get() : device_.get(); }
        /// @brief The device copy (what kernels see; null when empty).
        [[nodiscard]] std::byte* device_data() const noexcept { return device_.get(); }
        /// @brief Size in bytes as requested (0 when empty).
        [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
        /// @brief What was chosen and why.
        [[nodiscard]] const allocation_report& report() const noexcept { return report_; }
        /// @brief True when host access goes through a staging area (false when empty).
        [[nodiscard]] bool staged() const noexcept { return staged_; }
        /// @brief True when the host view is a non-coherent cache of the device copy (false when empty).
        [[nodiscard]] bool non_coherent() const noexcept { return non_coherent_; }
        /// @brief False for an empty (default-constructed, moved-from or failed) allocation.
        [[nodiscard]] explicit operator bool() const noexcept { return device_ != nullptr; }

    private:
        friend class host_backend;
        void release() noexcept {
            if (owner_ != nullptr) owner_->in_use_.fetch_sub(reserved_, std::memory_order_relaxed);
            owner_ = nullptr;
            device_.reset();
            shadow_.reset();
        }
        host_backend* owner_ = nullptr;
        std::uint64_t size_ = 0;
        std::uint64_t reserved_ = 0;  ///< bytes counted against options::memory_limit
        // Shared with the queued device work that uses the memory (see the file comment).
        std::shared_ptr<std::byte[]> device_;
        std::shared_ptr<std::byte[]> shadow_;
        allocation_report report_;
        bool staged_ = false;
        bool non_coherent_ = false;
    };

    /// @brief A backend with default options; starts its worker thread.
    /// @throws std::system_error when the worker thread cannot be started
    host_backend() : host_backend(options{}) {}
    /// @brief A backend with `opt`; starts its worker thread.
    /// @throws std::system_error when the worker thread cannot be started
    explicit host_backend(options opt) : opt_(opt), worker_([this] { run(); }) {}
    host_backend(const host_backend&) = delete;
    host_backend& operator=(const host_backend&) = delete;
    /// @brief Drains the queue and stops the worker.
    ~host_backend() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        worker_.join();
        // The queue drained: every fence is complete (a callback for a value never submitted too).
        for (auto& [value, fn] : completion_callbacks_) fn(nullptr);
    }

    /// @brief "host".
    [[nodiscard]] std::string_view name() const noexcept { return "host"; }
    /// @brief The options the backend was created with.
    [[nodiscard]] const options& config() const noexcept { return opt_; }
    /// @brief The simulated non-coherent atom and storage offset alignment; the memory limit as the
    /// largest allocation.
    [[nodiscard]] device_limits limits() const noexcept {
        device_limits l;
        l.non_coherent_atom = opt_.non_coherent_atom;
        l.min_storage_offset_alignment = opt_.min_storage_offset_alignment;
        l.max_allocation_size = opt_.memory_limit;
        return l;
    }
    /// @brief Device bytes currently allocated (host copies included).
    [[nodiscard]] std::uint64_t bytes_in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }

    /// @brief The placement decision for `req`, as a pure function of the request and the options.
    [[nodiscard]] allocation_report decide(const memory_request& req) const {
        allocation_report r;
        r.requested = req.placement;
        r.memory_type = -1;
        const bool staged = req.placement == placement_kind::device || opt_.force_staging;
        if (staged) {
            r.chosen = placement_kind::device;
            r.zero_copy = false;
            r.reason = req.placement == placement_kind::device
                           ? "device placement: separate device memory, host access through a staging area"
                           : "staged: the device copy is separate and the host view is a staging area";
            if (opt_.force_staging && req.placement != placement_kind::device)
                r.fallbacks.push_back("forced staging (host_backend::options::force_staging) instead of " +
                                      std::string(to_string(req.placement)));
        } else {
            r.chosen = req.placement == placement_kind::automatic ? placement_kind::host : req.placement;
            r.zero_copy = true;
            r.host_coherent = !(req.explicit_flush && opt_.simulate_non_coherent);
            r.reason = r.host_coherent ? "zero-copy: the host view is the device memory"
                                       : "zero-copy, non-coherent simulation: flush/invalidate move bytes "
                                         "between the host cache and device memory";
            if (req.placement == placement_kind::automatic)
                r.reason += " (automatic: all memory of the host backend is host memory)";
        }
        return r;
    }

    // allocate(req) / try_allocate(req, ec): detail::allocation_entry_points over allocate_impl.

    /// @brief Host writes in `[off, off+n)` to the device: no-op (coherent), a copy of the
    /// atom-rounded range (non-coherent), or a queued staging copy (staged, returns its fence).
    /// @throws std::system_error out_of_range (the range leaves the allocation), invalid_argument
    /// (an empty allocation)
    fence flush(allocation& a, std::uint64_t off, std::uint64_t n) {
        check(a, off, n, "flush");
        inject(fault_point::flush, [&] { return "a flush of bytes [" + std::to_string(off) + ", +" + std::to_string(n) + ")"; });
        if (a.staged_) {
            return submit_as("the staging copy of a flush", [src = a.shadow_, dst = a.device_, off, n] {
                std::memcpy(dst.get() + off, src.get() + off, n);
            });
        }
        if (a.non_coherent_) {
            auto [b, e] = round(a, off, n);
            std::memcpy(a.device_.get() + b, a.shadow_.get() + b, e - b);
        }
        return {};
    }

    /// @brief Device writes in `[off, off+n)` to the host: no-op, atom-rounded copy, or a queued
    /// staging copy that is waited for, at most `timeout` (the caller's bound: a buffer passes its
    /// `set_wait_timeout`). The copy runs behind all work queued before it.
    /// @throws std::system_error timeout (naming the copy, its bytes and the bound in ms; the copy
    /// stays queued and completes later), out_of_range, invalid_argument (an empty allocation)
    void invalidate(allocation& a, std::uint64_t off, std::uint64_t n,
                    std::chrono::nanoseconds timeout = default_wait_timeout) {
        check(a, off, n, "invalidate");
        inject(fault_point::flush,
               [&] { return "an invalidate of bytes [" + std::to_string(off) + ", +" + std::to_string(n) + ")"; });
        if (a.staged_) {
            fence f = submit_as("the staging copy of an invalidate", [src = a.device_, dst = a.shadow_, off, n] {
                std::memcpy(dst.get() + off, src.get() + off, n);
            });
            if (!wait(f, timeout))
                throw_error(errc::timeout, "unibuf: host_backend: invalidate: the staging copy back to the host (" +
                                               std::to_string(n) + " bytes) did not complete within " +
                                               detail::ms_text(timeout) + " ms");
            return;
        }
        if (a.non_coherent_) {
            auto [b, e] = round(a, off, n);
            std::memcpy(a.shadow_.get() + b, a.device_.get() + b, e - b);
        }
    }

    /// @brief Queues a device-side copy between device memories.
    /// @throws std::system_error out_of_range, invalid_argument (an empty allocation)
    fence copy(allocation& src, std::uint64_t src_off, allocation& dst, std::uint64_t dst_off, std::uint64_t n) {
        check(src, src_off, n, "copy source");
        check(dst, dst_off, n, "copy destination");
        return submit_as("a device copy", [s = src.device_, d = dst.device_, src_off, dst_off, n] {
            std::memmove(d.get() + dst_off, s.get() + src_off, n);
        });
    }

    /// @brief Queues `k` over the bound device memory. Work runs in submission order, so the
    /// fences in `after` (earlier submissions) are already satisfied.
    /// @throws std::system_error invalid_argument (an empty kernel, a binding without allocation or
    /// with an empty one), out_of_range (a binding outside its allocation)
    fence dispatch(const host_kernel& k, dispatch_size groups, std::span<const bound_range<host_backend>> ranges,
                   std::span<const std::byte> push, std::span<const fence> after) {
        (void)after;
        if (!k) throw_error(errc::invalid_argument, "unibuf: host_backend: dispatch of an empty host_kernel");
        std::vector<std::span<std::byte>> bufs;
        std::vector<std::shared_ptr<std::byte[]>> keep;  // the memory stays alive until the kernel ran
        bufs.reserve(ranges.size());
        keep.reserve(ranges.size());
        for (std::size_t i = 0; i < ranges.size(); ++i) {
            const auto& r = ranges[i];
            if (r.allocation == nullptr)
                throw_error(errc::invalid_argument,
                            "unibuf: host_backend: dispatch binding " + std::to_string(i) + " has no allocation");
            check(*r.allocation, r.offset, r.size, "dispatch binding");
            bufs.emplace_back(r.allocation->device_.get() + r.offset, r.size);
            keep.push_back(r.allocation->device_);
        }
        std::vector<std::byte> pc(push.begin(), push.end());
        return submit_as("a dispatch", [k, groups, bufs = std::move(bufs), keep = std::move(keep), pc = std::move(pc)] {
            k(host_invocation{groups, bufs, pc});
        });
    }

    /// @brief Queues arbitrary device work (a CPU function); returns its fence. An exception it
    /// throws is kept for `device_error()`, never thrown into the caller.
    /// @throws std::system_error device_lost / out_of_memory only where `options::faults` injects them
    fence submit(std::function<void()> work) { return submit_as("a submission of device work", std::move(work)); }

    /// @brief A fence that completes once all work submitted so far has run (complete when none),
    /// as `vulkan_backend::submitted_fence` / `gl_backend::submitted_fence` (`FenceSource`).
    [[nodiscard]] fence submitted_fence() const {
        std::lock_guard lk(m_);
        return fence{submitted_};
    }

    /// @brief True when the work of `f` has run.
    [[nodiscard]] bool is_complete(const fence& f) const noexcept {
        return f.value <= completed_.load(std::memory_order_acquire);
    }
    /// @brief Waits up to `timeout` for `f`; false on timeout. `nanoseconds::max()` waits as long
    /// as it takes (the deadline saturates instead of overflowing).
    /// @throws std::system_error device_lost when `options::faults` lost the device before `f` completed
    [[nodiscard]] bool wait(const fence& f, std::chrono::nanoseconds timeout) const {
        if (is_complete(f)) return true;
        if (opt_.faults && !lost_.load(std::memory_order_acquire) && opt_.faults->hit(fault_point::wait))
            return false;  // an injected timeout
        std::unique_lock lk(m_);
        done_cv_.wait_until(lk, detail::deadline_after(timeout),
                            [&] { return is_complete(f) || lost_.load(std::memory_order_acquire); });
        if (is_complete(f)) return true;
        if (lost_.load(std::memory_order_acquire))
            throw_error(errc::device_lost, "unibuf: host_backend: wait for fence " + std::to_string(f.value) +
                                               ": the device was lost (injected fault) before it completed");
        return false;
    }
    /// @brief Waits for all submitted work (bounded); false on timeout.
    [[nodiscard]] bool wait_idle(std::chrono::nanoseconds timeout = default_wait_timeout) const {
        fence f;
        {
            std::lock_guard lk(m_);
            f.value = submitted_;
        }
        return wait(f, timeout);
    }
    /// @brief The first error a device job threw, if any (device jobs never throw into the caller).
    [[nodiscard]] std::string device_error() const {
        std::lock_guard lk(m_);
        return device_error_;
    }

    /// @brief The completion signal of the async layer (`when_complete`): calls `fn` once `f` has
    /// completed, on the worker thread right after the work of `f` ran, or at once on the calling
    /// thread when `f` is complete already. `fn` must be short and must not throw (it is called
    /// inside `noexcept` code; the async layer only posts a coroutine to its scheduler); its argument
    /// is an error: null, or `errc::device_lost` after an injected device loss (`options::faults`). Callbacks still pending when the
    /// backend is destroyed run after its queue drained, i.e. with their fences complete.
    /// @brief Callbacks of `notify_when_complete` still waiting for their fence.
    [[nodiscard]] std::size_t pending_notifications() const {
        std::lock_guard lk(m_);
        return completion_callbacks_.size();
    }
    void notify_when_complete(const fence& f, std::function<void(std::exception_ptr)> fn) {
        bool lost = false;
        {
            std::lock_guard lk(m_);
            lost = !is_complete(f) && lost_.load(std::memory_order_acquire);
            if (!is_complete(f) && !lost) {
                completion_callbacks_.emplace(f.value, std::move(fn));
                return;
            }
        }
        fn(lost ? lost_error(f) : nullptr);
    }

private:
    allocation allocate_impl(const memory_request& req, std::error_code& ec, std::string& why) {
        ec.clear();
        allocation a;
        if (req.size_bytes == 0) {
            ec = errc::invalid_argument;
            why = "unibuf: host_backend: an allocation of 0 bytes was requested; buffers need at least one element";
            return a;
        }
        if (std::string m = fault_injector::failure(opt_.faults.get(), "host_backend", fault_point::allocate,
                                                    [&] { return "an allocation of " + std::to_string(req.size_bytes) + " bytes"; });
            !m.empty()) {
            ec = errc::out_of_memory;
            why = std::move(m);
            return a;
        }
        a.report_ = decide(req);
        a.staged_ = !a.report_.zero_copy;
        a.non_coherent_ = !a.report_.host_coherent;
        const bool two = a.staged_ || a.non_coherent_;
        // Two copies of more than half of 2^64 bytes: the sum does not exist, and no limit allows it.
        const bool too_big = two && req.size_bytes > std::numeric_limits<std::uint64_t>::max() / 2;
        const std::uint64_t need = too_big ? std::numeric_limits<std::uint64_t>::max()
                                           : (two ? 2 * req.size_bytes : req.size_bytes);
        const std::string asked = two ? "2 x " + std::to_string(req.size_bytes) + " bytes (device memory and its " +
                                            (a.staged_ ? "staging area" : "host cache") + ")"
                                      : std::to_string(req.size_bytes) + " bytes";
        std::uint64_t cur = in_use_.load(std::memory_order_relaxed);
        do {
            if (too_big || need > opt_.memory_limit || cur > opt_.memory_limit - need) {
                ec = errc::out_of_memory;
                why = "unibuf: host_backend: out of device memory: asked for " + asked + ", " +
                      std::to_string(opt_.memory_limit - std::min(cur, opt_.memory_limit)) + " of " +
                      std::to_string(opt_.memory_limit) + " bytes free (options::memory_limit)";
                return allocation{};
            }
        } while (!in_use_.compare_exchange_weak(cur, cur + need, std::memory_order_relaxed));
        a.owner_ = this;
        a.reserved_ = need;
        a.size_ = req.size_bytes;
        a.device_ = make_memory(req.size_bytes);
        if (two) a.shadow_ = make_memory(req.size_bytes);
        if (!a.device_ || (two && !a.shadow_)) {
            ec = errc::out_of_memory;
            why = "unibuf: host_backend: the system could not provide " + asked;
            return allocation{};  // `a` returns its reservation on destruction
        }
        if (std::string m = fault_injector::failure(opt_.faults.get(), "host_backend", fault_point::map,
                                                    [&] { return "the host view of " + asked; });
            !m.empty()) {
            ec = errc::mapping_failed;
            why = std::move(m);
            return allocation{};  // `a` returns its reservation on destruction
        }
        return a;
    }

    // The injected device loss: work still queued never runs (its fences never complete; waits for
    // them throw device_lost), and pending completion callbacks get the error.
    void lose_device() {
        std::multimap<std::uint64_t, std::function<void(std::exception_ptr)>> failed;
        std::deque<std::function<void()>> dropped;  // destroyed outside the lock
        {
            std::lock_guard lk(m_);
            lost_.store(true, std::memory_order_release);
            dropped.swap(queue_);
            failed.swap(completion_callbacks_);
        }
        done_cv_.notify_all();
        for (auto& [value, fn] : failed) fn(lost_error(fence{value}));
    }

    [[nodiscard]] static std::exception_ptr lost_error(const fence& f) {
        return std::make_exception_ptr(std::system_error(
            make_error_code(errc::device_lost),
            "unibuf: host_backend: fence " + std::to_string(f.value) + ": the device was lost (injected fault) before it completed"));
    }

    // Queues `work` (described by `what` in injected errors); returns its fence.
    fence submit_as(std::string_view what, std::function<void()> work) {
        inject(fault_point::submit, [what] { return std::string(what); });
        std::uint64_t v = 0;
        {
            std::lock_guard lk(m_);
            v = ++submitted_;
            queue_.push_back(std::move(work));
        }
        cv_.notify_all();
        return fence{v};
    }

    // Counts a call of `p` (and every submission as a possible device loss); throws the injected
    // failure, naming the call and `what()` was asked. Nothing to do without `options::faults`.
    template <class What>
    void inject(fault_point p, What&& what) {
        if (lost_.load(std::memory_order_acquire) && p == fault_point::submit)
            throw_error(errc::device_lost, "unibuf: host_backend: " + what() + ": the device was lost (injected fault)");
        if (!opt_.faults) return;
        if (std::string m = fault_injector::failure(opt_.faults.get(), "host_backend", p, what); !m.empty())
            throw_error(errc::out_of_memory, m);
        if (p != fault_point::submit) return;
        if (std::string m = fault_injector::failure(opt_.faults.get(), "host_backend", fault_point::device_lost, what);
            !m.empty()) {
            lose_device();
            throw_error(errc::device_lost, m + ": the device is lost; every later submission fails");
        }
    }

    // Zero-initialized bytes, or null when the system has none to give.
    static std::shared_ptr<std::byte[]> make_memory(std::uint64_t n) {
        if (n > std::numeric_limits<std::size_t>::max()) return {};
        return std::shared_ptr<std::byte[]>(new (std::nothrow) std::byte[static_cast<std::size_t>(n)]());
    }

    // The range test cannot wrap: `off + n` is never formed.
    static void check(const allocation& a, std::uint64_t off, std::uint64_t n, const char* what) {
        detail::check_allocation_range("host_backend", what, static_cast<bool>(a), a.size_, off, n);
    }

    // [off, off + n) (inside the allocation) rounded out to the atom and clamped to the allocation,
    // computed without forming a sum past the allocation's size.
    [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> round(const allocation& a, std::uint64_t off,
                                                                std::uint64_t n) const noexcept {
        const std::uint64_t atom = std::max<std::uint64_t>(1, opt_.non_coherent_atom);
        const std::uint64_t b = off / atom * atom;
        const std::uint64_t end = off + n;  // <= a.size_ (checked)
        std::uint64_t e = end;
        if (const std::uint64_t rest = end % atom; rest != 0)
            e = atom - rest > a.size_ - end ? a.size_ : end + (atom - rest);
        return {b, e};
    }

    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lk(m_);
                cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) return;  // stop_ and drained
                job = std::move(queue_.front());
                queue_.pop_front();
            }
#if UNIBUF_EXCEPTIONS
            try {
                job();
            } catch (const std::exception& e) {
                std::lock_guard lk(m_);
                if (device_error_.empty()) device_error_ = e.what();
            }
#else
            job();
#endif
            std::vector<std::function<void(std::exception_ptr)>> ready;
            {
                std::lock_guard lk(m_);
                const std::uint64_t done = completed_.fetch_add(1, std::memory_order_release) + 1;
                while (!completion_callbacks_.empty() && completion_callbacks_.begin()->first <= done) {
                    ready.push_back(std::move(completion_callbacks_.begin()->second));
                    completion_callbacks_.erase(completion_callbacks_.begin());
                }
            }
            done_cv_.notify_all();
            for (auto& fn : ready) fn(nullptr);
        }
    }

    options opt_;
    std::atomic<std::uint64_t> in_use_{0};
    mutable std::mutex m_;
    std::condition_variable cv_;
    mutable std::condition_variable done_cv_;
    std::deque<std::function<void()>> queue_;
    std::uint64_t submitted_ = 0;
    std::atomic<std::uint64_t> completed_{0};
    std::string device_error_;
    std::atomic<bool> lost_{false};  // an injected device loss (options::faults)
    std::multimap<std::uint64_t, std::function<void(std::exception_ptr)>> completion_callbacks_;  // by fence value
    bool stop_ = false;
    std::thread worker_;  // last: starts after every member above is constructed, joins first
};

static_assert(Backend<host_backend> && FenceSource<host_backend> && DispatchingBackend<host_backend, host_kernel>,
              "host_backend keeps the backend contract of backend/concepts.hpp");

} // namespace unibuf
