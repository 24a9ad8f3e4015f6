/// @file vulkan_backend.hpp
/// @brief unibuf's Vulkan backend: allocations chosen by `select_memory`, persistent mappings,
/// staging, timeline-semaphore fences, copies and compute dispatch through Vulkan-Hpp.
///
/// - Zero-copy placements map their memory once, persistently. `coherence::explicit_flush` on
///   non-coherent memory calls vkFlush/InvalidateMappedMemoryRanges over the range rounded out to
///   `nonCoherentAtomSize` and clamped to the allocation.
/// - Staged placements (`placement::device`, staged `automatic`) keep a persistent host-visible
///   staging buffer: `flush` queues a staging→device copy and returns its fence, `invalidate`
///   queues device→staging, waits, and invalidates the staging range if it is not coherent.
/// - Fences are values of one count of submissions (a timeline semaphore; VkFences per
///   submission where the device has no timeline semaphores). Work runs in submission order:
///   dispatches and the first command of each submission are preceded by a global memory barrier
///   (shader/transfer writes → shader/transfer reads and writes), copies by one where they touch
///   what an earlier copy of the submission wrote, and every submission ends with a barrier to
///   host reads, so later device work and the host (after the fence) see earlier writes.
/// - Where the context has a transfer queue (`vulkan_context::transfer_queue()`, the copy engines
///   of a discrete GPU), submissions of copies only (`options::copies`) go to it; they and the
///   compute queue's submissions wait for each other through their timeline semaphores, so the
///   order above holds across the two queues. Buffers are then created with
///   VK_SHARING_MODE_CONCURRENT over both families (no ownership transfers).
///
/// This header is the backend class and everything it uses, one concern per header beside it:
/// allocation.hpp (`vulkan_allocation`, the allocator), batch.hpp (`vulkan_batch`, command
/// recording), kernel.hpp (`vulkan_kernel`), timeline.hpp (submission, reclaim, `wait_strategy`),
/// memory_selection.hpp (the pure memory decision), context.hpp (`vulkan_context`).
///
/// @code
/// unibuf::vulkan_backend vk{unibuf::vulkan_context{}};
/// unibuf::vulkan_kernel saxpy(vk, unibuf::kernels::saxpy_spv, 2, 8);
/// unibuf::basic_buffer<float, unibuf::vulkan_backend, unibuf::access::read_only> x(vk, n);
/// unibuf::shared_buffer<float, unibuf::vulkan_backend> y(vk, n);
/// auto f = unibuf::dispatch(vk, saxpy, {(n + 63) / 64}, unibuf::push_constants(params),
///                           unibuf::bind(x, unibuf::usage::read), unibuf::bind(y));
/// auto v = y.to_vector();   // lazy: waits for f, then reads
/// @endcode
#pragma once

#include "../../core/config.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"
#include "../concepts.hpp"
#include "../detail/allocate.hpp"
#include "../detail/timeline_fence.hpp"
#include "../fault_injection.hpp"
#include "../produce_plan.hpp"
#include "allocation.hpp"
#include "batch.hpp"
#include "context.hpp"
#include "kernel.hpp"
#include "memory_selection.hpp"
#include "timeline.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief The Vulkan backend (see the file comment). Satisfies `unibuf::Backend`, `FenceSource`,
/// `DispatchingBackend<vulkan_backend, vulkan_kernel>` and `ProducePlanner`.
///
/// Thread-safe: allocate, submit, wait from any thread (submissions are serialized by a mutex).
/// Not movable: allocations and kernels point to it, and it must outlive them.
class vulkan_backend : public detail::allocation_entry_points<vulkan_backend> {
    friend class detail::allocation_entry_points<vulkan_backend>;
    friend class vulkan_kernel;  // its constructor takes the backend's context and timeline

public:
    /// @brief Behaviour switches.
    struct options {
        /// @brief Default spin_then_block: spinning on the timeline value answers sooner than
        /// blocking in the driver, which pays a wake-up (measured: see bench/RESULTS.md). Spinning
        /// for up to `spin_budget` gets the short-wait latency of the spin, and waits longer than
        /// the budget (where the wake-up is small in relation) sleep instead of burning a core.
        wait_strategy wait = wait_strategy::spin_then_block;
        /// @brief How long spin_then_block spins before it blocks (default 50 µs: a few spinning
        /// round trips, so short work never reaches the blocking path; see bench/RESULTS.md).
        std::chrono::nanoseconds spin_budget = std::chrono::microseconds(50);
        /// @brief Thresholds of the automatic placement (`select_memory`).
        vulkan::selection_thresholds thresholds{};
        /// @brief When a parallel fill (`unibuf::producer`) of mappable VRAM stages through system
        /// memory and the copy engine (`select_produce_path`).
        vulkan::producer_thresholds producer{};
        /// @brief Usable share of a heap without VK_EXT_memory_budget.
        double budget_fraction = vulkan::heap_budget::default_fraction;
        /// @brief Use timeline semaphores where the device has them (false: VkFences, for tests).
        bool use_timeline = true;
        /// @brief Most bytes this backend allocates from any one heap (0: no limit beyond the
        /// budget). A cap for sharing a device; out-of-memory tests use it to stay bounded.
        std::uint64_t heap_limit = 0;
        /// @brief Which queue runs submissions of copies only (see `copy_queue`). Default compute:
        /// on the H200 the transfer queue moved no copy faster than the compute queue (measured:
        /// see bench/RESULTS.md), and staying on one queue spares the cross-queue waits.
        copy_queue copies = copy_queue::compute;
        /// @brief With `copy_queue::automatic`: the fewest bytes a copy-only submission moves to go
        /// to the transfer queue (measured: see bench/RESULTS.md).
        std::uint64_t transfer_min_bytes = std::uint64_t{1} << 20;
        /// @brief For tests of devices with one queue family (lavapipe): run the transfer queue's
        /// timeline on the compute queue where the context has no transfer queue, so that the
        /// bookkeeping of two queues runs (under validation) without the hardware. No speed gain.
        bool emulate_transfer_queue = false;
        /// @brief Fails the N-th call of a kind when armed (tests of failure paths; null, the
        /// default: no faults, one pointer test per call). What each point does here: see the
        /// Vulkan column of fault_injection.hpp (allocate: vkAllocateMemory, map: vkMapMemory,
        /// flush: every flush/invalidate, submit and device_lost: vkQueueSubmit, wait: a fence wait).
        std::shared_ptr<fault_injector> faults{};
    };

    /// @brief A point on the backend's queue; complete when the submission with this value ran
    /// (0: nothing to wait for). The same kind of value as `host_backend::fence`, one type per backend.
    using fence = detail::timeline_fence<vulkan_backend>;

    /// @brief One buffer allocation (see `vulkan_allocation`).
    using allocation = vulkan_allocation;

    /// @brief Several commands recorded into one submission (see `vulkan_batch`).
    using batch = vulkan_batch;

    /// @brief Takes over `ctx` (an owned or adopted context) with default options.
    /// @throws std::system_error from Vulkan object creation
    explicit vulkan_backend(vulkan_context ctx) : vulkan_backend(std::move(ctx), options{}) {}

    /// @brief Takes over `ctx` (an owned or adopted context) and creates the submission objects.
    /// @throws std::system_error invalid_argument (an empty, moved-from context), or from Vulkan
    ///         object creation
    vulkan_backend(vulkan_context ctx, options opt)
        : ctx_(require_device(std::move(ctx))), opt_(opt),
          timeline_(ctx_, opt_.use_timeline && ctx_.capabilities().timeline_semaphore, opt_.emulate_transfer_queue),
          alloc_(ctx_, timeline_,
                 detail::vk_allocator_settings{opt_.thresholds, opt_.budget_fraction, opt_.heap_limit, opt_.faults}) {
        timeline_.set_copy_policy(opt_.copies, opt_.transfer_min_bytes);
        timeline_.set_faults(opt_.faults);
    }

    vulkan_backend(const vulkan_backend&) = delete;
    vulkan_backend& operator=(const vulkan_backend&) = delete;

    /// @brief Waits (bounded by `default_wait_timeout`) for all submitted work, then destroys the
    /// backend's objects. Allocations and kernels must be gone by then.
    ~vulkan_backend() {
#if UNIBUF_EXCEPTIONS
        try {
            (void)wait_idle(default_wait_timeout);
        } catch (...) {
            // device lost: nothing is waited for; the objects are destroyed all the same
        }
#else
        (void)wait_idle(default_wait_timeout);
#endif
        // An injected loss (options::faults): the device still ran what was submitted before it.
        timeline_.settle_after_loss(default_wait_timeout);
    }

    // ---- identity and configuration -------------------------------------------------------

    /// @brief "vulkan".
    [[nodiscard]] std::string_view name() const noexcept { return "vulkan"; }
    /// @brief nonCoherentAtomSize, minStorageBufferOffsetAlignment and maxMemoryAllocationSize.
    [[nodiscard]] device_limits limits() const noexcept {
        const auto& c = ctx_.capabilities();
        device_limits l;
        l.non_coherent_atom = c.non_coherent_atom;
        l.min_storage_offset_alignment = c.min_storage_offset_alignment;
        l.max_allocation_size = c.max_allocation_size;
        return l;
    }
    /// @brief The context whose device and queue this backend uses.
    [[nodiscard]] vulkan_context& context() noexcept { return ctx_; }
    /// @brief The context whose device and queue this backend uses.
    [[nodiscard]] const vulkan_context& context() const noexcept { return ctx_; }
    /// @brief The options the backend was created with (wait strategy as last set).
    [[nodiscard]] const options& config() const noexcept { return opt_; }
    /// @brief True when fences are timeline-semaphore values (false: one VkFence per submission).
    [[nodiscard]] bool uses_timeline() const noexcept { return timeline_.uses_timeline(); }
    /// @brief Changes how `wait` waits (not while another thread waits).
    void set_wait_strategy(wait_strategy w, std::chrono::nanoseconds spin_budget = std::chrono::microseconds(50)) noexcept {
        opt_.wait = w;
        opt_.spin_budget = spin_budget;
    }
    /// @brief Changes which queue runs copy-only submissions (not while a batch is open; buffers
    /// allocated before keep working: their sharing mode depends only on the context).
    void set_copy_queue(copy_queue q, std::uint64_t transfer_min_bytes = std::uint64_t{1} << 20) {
        opt_.copies = q;
        opt_.transfer_min_bytes = transfer_min_bytes;
        timeline_.set_copy_policy(q, transfer_min_bytes);
    }
    /// @brief True when copy-only submissions can run on a transfer queue (the context has one, or
    /// `options::emulate_transfer_queue`, and fences are timeline values).
    [[nodiscard]] bool has_transfer_queue() const noexcept { return timeline_.has_transfer_lane(); }
    /// @brief Where copy-only submissions go and why (printable), e.g. "transfer queue (dedicated
    /// transfer family 1 (2 queues)) for copy-only submissions of at least 1048576 bytes".
    [[nodiscard]] std::string copy_queue_report() const {
        const auto& caps = ctx_.capabilities();
        if (!timeline_.has_transfer_lane()) {
            if (caps.transfer_queue && !uses_timeline())
                return "compute queue: the transfer queue needs timeline semaphores (VkFence fallback in use)";
            return "compute queue: no transfer queue (" + caps.transfer_queue_note + ")";
        }
        const std::string where = caps.transfer_queue ? "transfer queue (" + caps.transfer_queue_note + ")"
                                                      : "transfer timeline emulated on the compute queue (" +
                                                            caps.transfer_queue_note + ")";
        switch (opt_.copies) {
            case copy_queue::compute: return "compute queue (forced; " + where + " unused)";
            case copy_queue::transfer: return where + " for every copy-only submission (forced)";
            case copy_queue::both:
                return "both queues: copy-only submissions of at least " + std::to_string(opt_.transfer_min_bytes) +
                       " bytes split between the compute queue and the " + where;
            case copy_queue::automatic: break;
        }
        return where + " for copy-only submissions of at least " + std::to_string(opt_.transfer_min_bytes) +
               " bytes, the compute queue below";
    }
    /// @brief Bytes this backend has allocated from heap `i` (device and staging memory).
    [[nodiscard]] std::uint64_t bytes_in_use(std::size_t heap) const { return alloc_.bytes_in_use(heap); }
    /// @brief Bytes each heap can still take (VK_EXT_memory_budget, else a share of the heap size
    /// minus this backend's allocations).
    [[nodiscard]] vulkan::heap_budget budget() const { return alloc_.budget(); }
    /// @brief The memory decision `allocate(req)` would make now (pure `select_memory` on this
    /// device's table and current budget).
    [[nodiscard]] vulkan::memory_decision decide(const memory_request& req) const { return alloc_.decide(req); }

    /// @brief How `unibuf::producer` fills `bytes` of `a` from `threads` writer threads
    /// (pure `select_produce_path` on this device's table and `options::producer`).
    [[nodiscard]] produce_plan plan_produce(const allocation& a, std::uint64_t bytes, unsigned threads) const {
        return vulkan::select_produce_path(ctx_.capabilities().memory, a.memory_type(), a.staged(), bytes, threads,
                                           opt_.producer);
    }
    /// @brief Changes the producer thresholds (not while a fill runs).
    void set_producer_thresholds(const vulkan::producer_thresholds& t) noexcept { opt_.producer = t; }

    // ---- allocation ------------------------------------------------------------------------
    // allocate(req) / try_allocate(req, ec) come from detail::allocation_entry_points over
    // allocate_impl: errors out_of_memory (naming asked and available bytes), unsupported,
    // mapping_failed, invalid_argument (0 bytes, a broken combination rule).

    // ---- host <-> device ---------------------------------------------------------------------

    /// @brief Host writes in `[off, off+n)` to the device: nothing (coherent), a flush rounded to
    /// the atom (non-coherent), or a queued staging→device copy whose fence is returned.
    /// @throws std::system_error out_of_range, invalid_argument (an empty allocation), device_lost;
    /// out_of_memory where `options::faults` injects it
    fence flush(allocation& a, std::uint64_t off, std::uint64_t n) {
        detail::vk_check_range(a, off, n, "flush");
        inject_flush("a flush", off, n);
        if (!a.staged()) {
            if (!a.host_coherent()) detail::vk_allocator::flush_mapped(ctx_, a, off, n);
            return {};
        }
        if (n == 0) return {};
        auto b = begin();
        b.upload(a, off, n);
        return b.submit();
    }

    /// @brief Device writes in `[off, off+n)` to the host: nothing (coherent), an invalidate rounded
    /// to the atom (non-coherent), or a device→staging copy that is waited for, at most `timeout`
    /// (the caller's bound: a buffer passes its `set_wait_timeout`).
    /// @throws std::system_error out_of_range, invalid_argument (an empty allocation), timeout
    /// (naming the copy, its bytes and the bound in ms), device_lost; out_of_memory where
    /// `options::faults` injects it
    void invalidate(allocation& a, std::uint64_t off, std::uint64_t n,
                    std::chrono::nanoseconds timeout = default_wait_timeout) {
        detail::vk_check_range(a, off, n, "invalidate");
        inject_flush("an invalidate", off, n);
        if (a.staged() && n > 0) {
            fence f;
            {
                auto b = begin();
                b.download(a, off, n);
                f = b.submit();
            }
            if (!wait(f, timeout))
                throw_error(errc::timeout, "unibuf: vulkan: invalidate: the staging copy back to the host (" +
                                               std::to_string(n) + " bytes) did not complete within " +
                                               detail::ms_text(timeout) + " ms");
        }
        if (!a.host_coherent()) detail::vk_allocator::invalidate_mapped(ctx_, a, off, n);
    }

    /// @brief Queues a device copy of `n` bytes between the device copies of two allocations.
    /// @throws std::system_error out_of_range, invalid_argument (overlapping ranges of one buffer,
    /// an empty allocation)
    fence copy(allocation& src, std::uint64_t src_off, allocation& dst, std::uint64_t dst_off, std::uint64_t n) {
        detail::vk_check_range(src, src_off, n, "copy source");
        detail::vk_check_range(dst, dst_off, n, "copy destination");
        if (n == 0) return {};
        auto b = begin();
        b.copy(src, src_off, dst, dst_off, n);
        return b.submit();
    }

    /// @brief Queues `k` over `ranges` with `push` bytes, ordered after `after` (fences of this
    /// backend: its queue runs in submission order, so they are earlier submissions and the
    /// leading barrier makes their writes visible).
    /// @throws std::system_error invalid_argument (a fence this backend never issued, or see
    /// vulkan_batch::dispatch), out_of_range
    fence dispatch(const vulkan_kernel& k, dispatch_size groups, std::span<const bound_range<vulkan_backend>> ranges,
                   std::span<const std::byte> push, std::span<const fence> after) {
        auto b = begin();
        const std::uint64_t submitted = timeline_.submitted_locked();
        for (const auto& f : after)
            if (f.value > submitted)
                throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch after fence " + std::to_string(f.value) +
                                                        ", which this backend never issued (last: " +
                                                        std::to_string(submitted) + ")");
        b.dispatch(k, groups, ranges, push);
        return b.submit();
    }

    /// @brief Starts a batch (see `vulkan_batch`); it holds the submission lock until submitted.
    [[nodiscard]] batch begin() { return batch(ctx_, timeline_, timeline_.lock()); }

    // ---- fences ------------------------------------------------------------------------------

    /// @brief True when `f` has completed (never blocks).
    /// @throws std::system_error device_lost
    [[nodiscard]] bool is_complete(const fence& f) const { return timeline_.is_complete(f.value); }

    /// @brief Waits up to `timeout` for `f` with the configured strategy; false on timeout.
    /// `nanoseconds::max()` waits as long as it takes (the deadline saturates, never overflows).
    /// @throws std::system_error device_lost
    [[nodiscard]] bool wait(const fence& f, std::chrono::nanoseconds timeout) const {
        return timeline_.wait(f.value, timeout, opt_.wait, opt_.spin_budget);
    }

    /// @brief A timeline semaphore of this device that only the host signals, to end another
    /// thread's `wait_or_wake` early (see `vulkan_wake_semaphore`); empty where fences are
    /// VkFences (`uses_timeline()` false). Destroy it before the backend.
    /// @throws std::system_error from vkCreateSemaphore
    [[nodiscard]] vulkan_wake_semaphore make_wake_semaphore() const { return timeline_.make_wake(); }

    /// @brief Blocks in the driver, never spinning (whatever the wait strategy), until `f`
    /// completed or `wake` reached `wake_value`, at most `timeout`: one vkWaitSemaphores with
    /// VK_SEMAPHORE_WAIT_ANY_BIT over the queues' timeline semaphores and `wake`. Where fences are
    /// VkFences, or `wake` is empty, it waits for `f` alone (a VkFence cannot be signalled by the
    /// host, so nothing ends that wait early) and never returns `woken`.
    /// @throws std::system_error invalid_argument (a fence this backend never issued, a wake
    /// semaphore of another device), device_lost
    [[nodiscard]] vulkan_wait_result wait_or_wake(const fence& f, const vulkan_wake_semaphore& wake,
                                                  std::uint64_t wake_value, std::chrono::nanoseconds timeout) const {
        const std::uint64_t newest = timeline_.submitted();
        if (f.value > newest)
            throw_error(errc::invalid_argument, "unibuf: vulkan: wait_or_wake for fence " + std::to_string(f.value) +
                                                    ", which this backend never issued (last: " +
                                                    std::to_string(newest) + ")");
        if (wake && wake.device() != ctx_.device())
            throw_error(errc::invalid_argument,
                        "unibuf: vulkan: wait_or_wake with a wake semaphore of another device (made by another "
                        "backend's make_wake_semaphore)");
        return timeline_.wait_or_wake(f.value, wake, wake_value, timeout);
    }

    /// @brief Waits (bounded) for everything submitted so far; false on timeout.
    /// @throws std::system_error device_lost
    [[nodiscard]] bool wait_idle(std::chrono::nanoseconds timeout = default_wait_timeout) const {
        return wait(submitted_fence(), timeout);
    }

    /// @brief The fence of the newest submission: complete once all work submitted so far has run
    /// (complete when none), as `host_backend::submitted_fence` / `gl_backend::submitted_fence`
    /// (`FenceSource`).
    [[nodiscard]] fence submitted_fence() const { return fence{timeline_.submitted()}; }

private:
    static vulkan_context require_device(vulkan_context ctx) {
        if (!ctx.device())
            throw_error(errc::invalid_argument,
                        "unibuf: vulkan: a backend needs a context with a device; this one is empty (moved from or reset)");
        return ctx;
    }

    allocation allocate_impl(const memory_request& req, std::error_code& ec, std::string& why) {
        return alloc_.allocate(req, ec, why);
    }

    // options::faults at every flush and invalidate (before any Vulkan call): errc::out_of_memory
    // as vkFlush/InvalidateMappedMemoryRanges or the staging copy's vkQueueSubmit may fail.
    void inject_flush(const char* what, std::uint64_t off, std::uint64_t n) const {
        if (std::string m = fault_injector::failure(opt_.faults.get(), "vulkan", fault_point::flush, [&] {
                return what + (" of bytes [" + std::to_string(off) + ", +" + std::to_string(n) +
                               "), as VK_ERROR_OUT_OF_DEVICE_MEMORY");
            });
            !m.empty())
            throw_error(errc::out_of_memory, m);
    }

    // Declared in destruction order: the allocator and the timeline go before the context's device.
    vulkan_context ctx_;
    options opt_;
    detail::vk_timeline timeline_;
    detail::vk_allocator alloc_;
};

// ---- out-of-class definitions: the pieces that name the backend -----------------------------

inline vulkan_kernel::vulkan_kernel(vulkan_backend& backend, std::span<const std::uint32_t> spirv,
                                    std::uint32_t bindings, std::uint32_t push_constant_bytes, const char* entry)
    : vulkan_kernel(backend.ctx_, backend.timeline_, spirv, bindings, push_constant_bytes, entry) {}

inline void vulkan_batch::dispatch(const vulkan_kernel& k, dispatch_size groups,
                                   std::span<const bound_range<vulkan_backend>> ranges,
                                   std::span<const std::byte> push) {
    check_dispatch(k, groups, ranges.size(), push.size());
    std::vector<vk::DescriptorBufferInfo> infos;
    infos.reserve(ranges.size());
    for (std::size_t i = 0; i < ranges.size(); ++i)
        infos.push_back(binding_info(i, ranges[i].allocation, ranges[i].offset, ranges[i].size));
    record_dispatch(k, groups, infos, push);
}

static_assert(Backend<vulkan_backend> && FenceSource<vulkan_backend> && ProducePlanner<vulkan_backend> &&
                  DispatchingBackend<vulkan_backend, vulkan_kernel> && CopyBatchingBackend<vulkan_backend>,
              "vulkan_backend keeps the backend contract of backend/concepts.hpp");

} // namespace unibuf
