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
/// - Fences are values of one timeline semaphore (VkFences per submission where the device has no
///   timeline semaphores). All work goes to one queue in submission order; every command is
///   preceded by a global memory barrier (shader/transfer writes → shader/transfer reads and
///   writes) and every submission ends with a barrier to host reads, so later device work and the
///   host (after the fence) see earlier writes.
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

#include "../../core/detail/cpu_relax.hpp"
#include "../../core/detail/meta.hpp"
#include "../concepts.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"
#include "context.hpp"
#include "memory_selection.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief How a thread waits for a fence.
enum class wait_strategy : std::uint8_t {
    block,            ///< vkWaitSemaphores / vkWaitForFences: sleeps in the driver (56 µs round trip on the H100)
    spin,             ///< polls the timeline value / fence status (17 µs round trip on the H100), burns a core
    spin_then_block,  ///< polls for `spin_budget`, then blocks: spin latency for short work, no burnt core for long
};

/// @brief Printable name of a wait strategy.
[[nodiscard]] constexpr std::string_view to_string(wait_strategy w) noexcept {
    switch (w) {
        case wait_strategy::block: return "block";
        case wait_strategy::spin: return "spin";
        case wait_strategy::spin_then_block: return "spin_then_block";
    }
    return "?";
}

class vulkan_backend;

/// @brief A compute kernel: a SPIR-V module with `bindings` storage buffers in set 0 (bindings
/// 0..N-1, in the order of `dispatch`'s ranges) and `push_constant_bytes` of push constants.
///
/// Move-only; destroys its pipeline through the backend once no submitted work uses it.
/// The backend must outlive the kernel.
/// @code
/// unibuf::vulkan_kernel saxpy(backend, unibuf::kernels::saxpy_spv, 2, sizeof(params));
/// @endcode
class vulkan_kernel {
public:
    /// @brief Builds the shader module, descriptor-set layout, pipeline layout and compute pipeline.
    /// @param spirv SPIR-V words (e.g. `unibuf::kernels::saxpy_spv`)
    /// @param bindings number of storage-buffer bindings (set 0, bindings 0..bindings-1)
    /// @param push_constant_bytes size of the push-constant block (0: none); a multiple of 4
    /// @param entry entry point name
    /// @throws std::system_error errc::invalid_argument (empty SPIR-V, push size not a multiple of 4 or
    ///         above the device's maxPushConstantsSize), or the Vulkan error of a failed creation
    vulkan_kernel(vulkan_backend& backend, std::span<const std::uint32_t> spirv, std::uint32_t bindings,
                  std::uint32_t push_constant_bytes, const char* entry = "main");
    vulkan_kernel(vulkan_kernel&& o) noexcept
        : owner_(std::exchange(o.owner_, nullptr)), module_(std::exchange(o.module_, {})),
          set_layout_(std::exchange(o.set_layout_, {})), layout_(std::exchange(o.layout_, {})),
          pipeline_(std::exchange(o.pipeline_, {})), bindings_(o.bindings_), push_bytes_(o.push_bytes_) {}
    vulkan_kernel& operator=(vulkan_kernel&& o) noexcept {
        if (this != &o) {
            reset();
            owner_ = std::exchange(o.owner_, nullptr);
            module_ = std::exchange(o.module_, {});
            set_layout_ = std::exchange(o.set_layout_, {});
            layout_ = std::exchange(o.layout_, {});
            pipeline_ = std::exchange(o.pipeline_, {});
            bindings_ = o.bindings_;
            push_bytes_ = o.push_bytes_;
        }
        return *this;
    }
    vulkan_kernel(const vulkan_kernel&) = delete;
    vulkan_kernel& operator=(const vulkan_kernel&) = delete;
    ~vulkan_kernel() { reset(); }

    /// @brief Releases the Vulkan objects (deferred until submitted work using them completes).
    void reset() noexcept;

    /// @brief The compute pipeline (null after a move or reset).
    [[nodiscard]] vk::Pipeline pipeline() const noexcept { return pipeline_; }
    /// @brief The pipeline layout (set 0 + the push-constant range).
    [[nodiscard]] vk::PipelineLayout pipeline_layout() const noexcept { return layout_; }
    /// @brief The layout of descriptor set 0 (`bindings()` storage buffers).
    [[nodiscard]] vk::DescriptorSetLayout set_layout() const noexcept { return set_layout_; }
    /// @brief Number of storage-buffer bindings a dispatch must bind.
    [[nodiscard]] std::uint32_t bindings() const noexcept { return bindings_; }
    /// @brief Size of the push-constant block a dispatch must push.
    [[nodiscard]] std::uint32_t push_constant_bytes() const noexcept { return push_bytes_; }

private:
    vulkan_backend* owner_ = nullptr;
    vk::ShaderModule module_;
    vk::DescriptorSetLayout set_layout_;
    vk::PipelineLayout layout_;
    vk::Pipeline pipeline_;
    std::uint32_t bindings_ = 0;
    std::uint32_t push_bytes_ = 0;
};

/// @brief The Vulkan backend (see the file comment). Satisfies `unibuf::Backend`.
///
/// Thread-safe: allocate, submit, wait from any thread (submissions are serialized by a mutex).
/// Not movable: allocations and kernels point to it, and it must outlive them.
class vulkan_backend {
public:
    /// @brief Behaviour switches.
    struct options {
        /// @brief Default spin_then_block: DEVICE.md measured an empty submit + wait at 17 µs when
        /// spinning on the timeline value and 56 µs when blocking in the driver. Spinning for up to
        /// `spin_budget` gets the short-wait latency of the spin, and waits longer than the budget
        /// (where ~40 µs of wake-up cost is small in relation) sleep instead of burning a core.
        wait_strategy wait = wait_strategy::spin_then_block;
        /// @brief How long spin_then_block spins before it blocks (default 50 µs: about three
        /// spinning round trips of the H100, so short work never reaches the blocking path).
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
    };

    /// @brief A point on the backend's queue; complete when the submission with this value ran.
    struct fence {
        std::uint64_t value = 0;  ///< 0: nothing to wait for
        friend bool operator==(const fence&, const fence&) = default;
    };

    /// @brief One buffer allocation: a VkBuffer with its own VkDeviceMemory, persistently mapped
    /// when zero-copy; a device buffer plus a mapped staging buffer when staged. Move-only.
    class allocation {
    public:
        allocation() = default;
        allocation(allocation&& o) noexcept { steal(o); }
        allocation& operator=(allocation&& o) noexcept {
            if (this != &o) {
                release();
                steal(o);
            }
            return *this;
        }
        allocation(const allocation&) = delete;
        allocation& operator=(const allocation&) = delete;
        ~allocation() { release(); }

        /// @brief The persistent host mapping (zero-copy) or staging mapping (staged).
        [[nodiscard]] std::byte* host_data() const noexcept { return host_; }
        /// @brief Size in bytes as requested.
        [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
        /// @brief What was chosen and why, fallbacks included.
        [[nodiscard]] const allocation_report& report() const noexcept { return report_; }
        /// @brief The buffer device work binds (the device copy when staged).
        [[nodiscard]] vk::Buffer buffer() const noexcept { return device_.buffer; }
        /// @brief The staging buffer (null when zero-copy).
        [[nodiscard]] vk::Buffer staging_buffer() const noexcept { return staging_.buffer; }
        /// @brief True when host access goes through a staging copy.
        [[nodiscard]] bool staged() const noexcept { return static_cast<bool>(staging_.buffer); }
        /// @brief True when the host mapping needs no flush/invalidate.
        [[nodiscard]] bool host_coherent() const noexcept { return host_coherent_; }
        /// @brief Memory type of the device copy, and of the staging buffer (-1 when zero-copy).
        [[nodiscard]] int memory_type() const noexcept { return device_.type; }
        [[nodiscard]] int staging_memory_type() const noexcept { return staging_.type; }
        /// @brief True when the allocation holds memory.
        [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(device_.buffer); }

    private:
        friend class vulkan_backend;
        struct part {
            vk::Buffer buffer;
            vk::DeviceMemory memory;
            std::uint64_t bytes = 0;  ///< allocationSize
            std::uint32_t heap = 0;
            int type = -1;
        };
        void steal(allocation& o) noexcept {
            owner_ = std::exchange(o.owner_, nullptr);
            device_ = std::exchange(o.device_, part{});
            staging_ = std::exchange(o.staging_, part{});
            host_ = std::exchange(o.host_, nullptr);
            size_ = std::exchange(o.size_, 0);
            host_coherent_ = o.host_coherent_;
            report_ = std::move(o.report_);
        }
        void release() noexcept;
        [[nodiscard]] const part& host_part() const noexcept { return staging_.buffer ? staging_ : device_; }

        vulkan_backend* owner_ = nullptr;
        part device_;
        part staging_;
        std::byte* host_ = nullptr;
        std::uint64_t size_ = 0;
        bool host_coherent_ = true;
        allocation_report report_;
    };

    /// @brief Several commands recorded into one submission (one fence); holds the backend's
    /// submission lock from `begin()` until `submit()` or destruction (which discards it).
    ///
    /// Once moved from or submitted the batch is empty: `size()` is 0, `submit()` returns a
    /// complete fence, and recording (`copy`, `upload`, `download`, `dispatch`) throws
    /// `errc::invalid_argument`.
    /// @code
    /// auto b = vk.begin();
    /// b.upload(a, 0, n);                               // staging -> device (staged allocations)
    /// b.dispatch(kernel, groups, ranges, push);
    /// auto f = b.submit();
    /// @endcode
    class batch {
    public:
        batch(batch&& o) noexcept
            : owner_(std::exchange(o.owner_, nullptr)), lock_(std::move(o.lock_)), cb_(std::exchange(o.cb_, {})),
              sets_(std::move(o.sets_)), commands_(std::exchange(o.commands_, 0)) {}
        batch& operator=(batch&&) = delete;
        batch(const batch&) = delete;
        batch& operator=(const batch&) = delete;
        ~batch() { discard(); }

        /// @brief Device copy of `n` bytes between the device copies of two allocations.
        /// @throws std::system_error out_of_range, invalid_argument (overlap within one buffer, an
        /// empty allocation, an empty batch)
        void copy(const allocation& src, std::uint64_t src_off, const allocation& dst, std::uint64_t dst_off,
                  std::uint64_t n);
        /// @brief Staged: copies `[off, off+n)` staging → device (after flushing a non-coherent
        /// staging range). Zero-copy: flushes the atom-rounded range if non-coherent; records nothing.
        /// @throws std::system_error out_of_range, invalid_argument (an empty allocation or batch)
        void upload(const allocation& a, std::uint64_t off, std::uint64_t n);
        /// @brief Staged: copies `[off, off+n)` device → staging (the host must still wait for the
        /// fence and `invalidate_host` a non-coherent staging range). Zero-copy: records nothing.
        /// @throws std::system_error out_of_range, invalid_argument (an empty allocation or batch)
        void download(const allocation& a, std::uint64_t off, std::uint64_t n);
        /// @brief Records a dispatch of `k` over `ranges` (binding i = ranges[i]) with `push` bytes.
        /// Group counts beyond the device's maxComputeWorkGroupCount are split into several
        /// vkCmdDispatchBase calls (the kernel sees the same gl_GlobalInvocationID).
        /// @throws std::system_error invalid_argument (binding count, push size, a zero group
        ///         count, offset alignment, range size, an empty kernel, allocation or batch), out_of_range
        void dispatch(const vulkan_kernel& k, dispatch_size groups, std::span<const bound_range<vulkan_backend>> ranges,
                      std::span<const std::byte> push);
        /// @brief Number of commands recorded so far (0 once empty: moved from, submitted or discarded).
        [[nodiscard]] std::size_t size() const noexcept { return commands_; }
        /// @brief Ends and submits the batch; returns its fence (complete if nothing was recorded).
        /// @throws std::system_error device_lost / out_of_memory from vkQueueSubmit
        fence submit();

    private:
        friend class vulkan_backend;
        batch(vulkan_backend& owner, std::unique_lock<std::mutex> lock) : owner_(&owner), lock_(std::move(lock)) {}
        void begin_command();
        /// Throws invalid_argument when the batch is empty (moved from or submitted).
        void require_open(const char* what) const;
        /// Records one buffer-to-buffer copy region (after begin_command()).
        void record_copy(vk::Buffer src, std::uint64_t src_off, vk::Buffer dst, std::uint64_t dst_off, std::uint64_t n);
        void discard() noexcept;

        vulkan_backend* owner_;
        std::unique_lock<std::mutex> lock_;
        vk::CommandBuffer cb_;
        std::vector<std::pair<vk::DescriptorPool, vk::DescriptorSet>> sets_;
        std::size_t commands_ = 0;
    };

    /// @brief Takes over `ctx` (an owned or adopted context) with default options.
    /// @throws std::system_error from Vulkan object creation
    explicit vulkan_backend(vulkan_context ctx) : vulkan_backend(std::move(ctx), options{}) {}

    /// @brief Takes over `ctx` (an owned or adopted context) and creates the submission objects.
    /// @throws std::system_error invalid_argument (an empty, moved-from context), or from Vulkan
    ///         object creation
    vulkan_backend(vulkan_context ctx, options opt) : ctx_(std::move(ctx)), opt_(opt) {
        if (!ctx_.device())
            throw_error(errc::invalid_argument,
                        "unibuf: vulkan: a backend needs a context with a device; this one is empty (moved from or reset)");
        const auto& c = ctx_.capabilities();
        timeline_ = opt_.use_timeline && c.timeline_semaphore;
        heap_used_.assign(c.memory.heaps.size(), 0);
        vk::CommandPoolCreateInfo pci;
        pci.flags = vk::CommandPoolCreateFlagBits::eResetCommandBuffer;
        pci.queueFamilyIndex = ctx_.queue_family();
        detail::vk_check(dev().createCommandPool(&pci, nullptr, &cmd_pool_, d()), "vkCreateCommandPool");
        if (timeline_) {
            vk::SemaphoreTypeCreateInfo ti;
            ti.semaphoreType = vk::SemaphoreType::eTimeline;
            ti.initialValue = 0;
            vk::SemaphoreCreateInfo sci;
            sci.pNext = &ti;
            vk::Result r = dev().createSemaphore(&sci, nullptr, &timeline_sem_, d());
            if (r != vk::Result::eSuccess) {
                dev().destroyCommandPool(cmd_pool_, nullptr, d());
                detail::vk_check(r, "vkCreateSemaphore(timeline)");
            }
        }
    }

    vulkan_backend(const vulkan_backend&) = delete;
    vulkan_backend& operator=(const vulkan_backend&) = delete;

    /// @brief Waits (bounded, 10 s) for all submitted work, then destroys the backend's objects.
    /// Allocations and kernels must be gone by then.
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
        std::lock_guard lk(m_);
        reclaim_locked(true);
        for (auto& s : in_flight_) destroy_submission(s);
        in_flight_.clear();
        for (auto& g : graveyard_) destroy_garbage(g);
        graveyard_.clear();
        for (auto f : retired_fences_) dev().destroyFence(f, nullptr, d());
        for (auto p : desc_pools_) dev().destroyDescriptorPool(p, nullptr, d());
        if (cmd_pool_) dev().destroyCommandPool(cmd_pool_, nullptr, d());
        if (timeline_sem_) dev().destroySemaphore(timeline_sem_, nullptr, d());
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
    [[nodiscard]] bool uses_timeline() const noexcept { return timeline_; }
    /// @brief Changes how `wait` waits (not while another thread waits).
    void set_wait_strategy(wait_strategy w, std::chrono::nanoseconds spin_budget = std::chrono::microseconds(50)) noexcept {
        opt_.wait = w;
        opt_.spin_budget = spin_budget;
    }
    /// @brief Bytes this backend has allocated from heap `i` (device and staging memory).
    [[nodiscard]] std::uint64_t bytes_in_use(std::size_t heap) const {
        std::lock_guard lk(alloc_m_);
        return heap < heap_used_.size() ? heap_used_[heap] : 0;
    }
    /// @brief Bytes each heap can still take (VK_EXT_memory_budget, else a share of the heap size
    /// minus this backend's allocations).
    [[nodiscard]] vulkan::heap_budget budget() const {
        std::lock_guard lk(alloc_m_);
        return budget_locked();
    }
    /// @brief The memory decision `allocate(req)` would make now (pure `select_memory` on this
    /// device's table and current budget).
    [[nodiscard]] vulkan::memory_decision decide(const memory_request& req) const {
        return vulkan::select_memory(req, ctx_.capabilities().memory, budget(), opt_.thresholds);
    }

    /// @brief How `unibuf::producer` fills `bytes` of `a` from `threads` writer threads
    /// (pure `select_produce_path` on this device's table and `options::producer`).
    [[nodiscard]] produce_plan plan_produce(const allocation& a, std::uint64_t bytes, unsigned threads) const {
        return vulkan::select_produce_path(ctx_.capabilities().memory, a.memory_type(), a.staged(), bytes, threads,
                                           opt_.producer);
    }
    /// @brief Changes the producer thresholds (not while a fill runs).
    void set_producer_thresholds(const vulkan::producer_thresholds& t) noexcept { opt_.producer = t; }

    // ---- allocation ------------------------------------------------------------------------

    /// @brief Allocates for `req`.
    /// @throws std::system_error out_of_memory (naming asked and available bytes), unsupported,
    ///         mapping_failed, invalid_argument (0 bytes, a broken combination rule)
    [[nodiscard]] allocation allocate(const memory_request& req) {
        std::error_code ec;
        std::string why;
        allocation a = allocate_impl(req, ec, why);
        if (ec) throw_error(static_cast<errc>(ec.value()), why);
        return a;
    }
    /// @brief Allocates for `req`; an empty allocation and `ec` set on failure (nothing leaked).
    [[nodiscard]] allocation try_allocate(const memory_request& req, std::error_code& ec) {
        std::string why;
        return allocate_impl(req, ec, why);
    }

    // ---- host <-> device ---------------------------------------------------------------------

    /// @brief Host writes in `[off, off+n)` to the device: nothing (coherent), a flush rounded to
    /// the atom (non-coherent), or a queued staging→device copy whose fence is returned.
    /// @throws std::system_error out_of_range, device_lost
    fence flush(allocation& a, std::uint64_t off, std::uint64_t n) {
        check(a, off, n, "flush");
        if (!a.staged()) {
            if (!a.host_coherent_) flush_host(a, off, n);
            return {};
        }
        if (n == 0) return {};
        auto b = begin();
        b.upload(a, off, n);
        return b.submit();
    }

    /// @brief Device writes in `[off, off+n)` to the host: nothing (coherent), an invalidate rounded
    /// to the atom (non-coherent), or a device→staging copy that is waited for (bounded).
    /// @throws std::system_error out_of_range, timeout, device_lost
    void invalidate(allocation& a, std::uint64_t off, std::uint64_t n,
                    std::chrono::nanoseconds timeout = default_wait_timeout) {
        check(a, off, n, "invalidate");
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
        if (!a.host_coherent_) invalidate_host(a, off, n);
    }

    /// @brief Queues a device copy of `n` bytes between the device copies of two allocations.
    /// @throws std::system_error out_of_range, invalid_argument (overlapping ranges of one buffer)
    fence copy(allocation& src, std::uint64_t src_off, allocation& dst, std::uint64_t dst_off, std::uint64_t n) {
        check(src, src_off, n, "copy source");
        check(dst, dst_off, n, "copy destination");
        if (n == 0) return {};
        auto b = begin();
        b.copy(src, src_off, dst, dst_off, n);
        return b.submit();
    }

    /// @brief Queues `k` over `ranges` with `push` bytes, ordered after `after` (fences of this
    /// backend: its queue runs in submission order, so they are earlier submissions and the
    /// leading barrier makes their writes visible).
    /// @throws std::system_error invalid_argument (a fence this backend never issued, or see batch::dispatch)
    fence dispatch(const vulkan_kernel& k, dispatch_size groups, std::span<const bound_range<vulkan_backend>> ranges,
                   std::span<const std::byte> push, std::span<const fence> after) {
        auto b = begin();
        for (const auto& f : after)
            if (f.value > submitted_)
                throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch after fence " + std::to_string(f.value) +
                                                        ", which this backend never issued (last: " +
                                                        std::to_string(submitted_) + ")");
        b.dispatch(k, groups, ranges, push);
        return b.submit();
    }

    /// @brief Starts a batch (see `batch`).
    [[nodiscard]] batch begin() { return batch(*this, std::unique_lock<std::mutex>(m_)); }

    // ---- fences ------------------------------------------------------------------------------

    /// @brief True when `f` has completed (never blocks).
    /// @throws std::system_error device_lost
    [[nodiscard]] bool is_complete(const fence& f) const {
        if (f.value <= completed_.load(std::memory_order_acquire)) return true;
        return poll() >= f.value;
    }

    /// @brief Waits up to `timeout` for `f` with the configured strategy; false on timeout.
    /// `nanoseconds::max()` waits as long as it takes (the deadline saturates, never overflows).
    /// @throws std::system_error device_lost
    [[nodiscard]] bool wait(const fence& f, std::chrono::nanoseconds timeout) const {
        if (is_complete(f)) return true;
        const auto deadline = detail::deadline_after(timeout);
        switch (opt_.wait) {
            case wait_strategy::spin: return spin_until(f, deadline);
            case wait_strategy::block: return block_until(f, deadline);
            case wait_strategy::spin_then_block: {
                const auto spin_end = std::min(deadline, detail::deadline_after(opt_.spin_budget));
                if (spin_until(f, spin_end)) return true;
                return block_until(f, deadline);
            }
        }
        return false;
    }

    /// @brief Waits (bounded) for everything submitted so far; false on timeout.
    [[nodiscard]] bool wait_idle(std::chrono::nanoseconds timeout = default_wait_timeout) const {
        fence f;
        {
            std::lock_guard lk(m_);
            f.value = submitted_;
        }
        return wait(f, timeout);
    }

    /// @brief The fence of the newest submission.
    [[nodiscard]] fence submitted_fence() const {
        std::lock_guard lk(m_);
        return fence{submitted_};
    }

private:
    friend class vulkan_kernel;
    friend class allocation;
    friend class batch;

    struct submission {
        std::uint64_t value = 0;
        vk::CommandBuffer cb;
        vk::Fence fence;  ///< VkFence fallback only
        std::vector<std::pair<vk::DescriptorPool, vk::DescriptorSet>> sets;
    };
    /// Objects whose destruction waits for the submission `value` to complete.
    struct garbage {
        std::uint64_t value = 0;
        allocation::part device, staging;
        vk::ShaderModule module;
        vk::DescriptorSetLayout set_layout;
        vk::PipelineLayout layout;
        vk::Pipeline pipeline;
    };

    [[nodiscard]] const vk::DispatchLoaderDynamic& d() const noexcept { return ctx_.dispatcher(); }
    [[nodiscard]] vk::Device dev() const noexcept { return ctx_.device(); }

    // The range test cannot wrap: `off + n` is never formed.
    static void check(const allocation& a, std::uint64_t off, std::uint64_t n, const char* what) {
        if (!a)
            throw_error(errc::invalid_argument, std::string("unibuf: vulkan: ") + what + " of " + std::to_string(n) +
                                                    " bytes at offset " + std::to_string(off) +
                                                    " in an empty (moved-from or failed) allocation");
        if (off > a.size_ || n > a.size_ - off)
            throw_error(errc::out_of_range, std::string("unibuf: vulkan: ") + what + " of " + std::to_string(n) +
                                                " bytes at offset " + std::to_string(off) + " in an allocation of " +
                                                std::to_string(a.size_) + " bytes");
    }

    // The atom-rounded, allocation-clamped range of the host mapping.
    [[nodiscard]] vk::MappedMemoryRange mapped_range(const allocation& a, std::uint64_t off, std::uint64_t n) const {
        const auto& p = a.host_part();
        const auto ar = vulkan::round_to_atom(off, n, ctx_.capabilities().non_coherent_atom, p.bytes);
        vk::MappedMemoryRange r;
        r.memory = p.memory;
        r.offset = ar.offset;
        r.size = ar.size;
        return r;
    }
    void flush_host(const allocation& a, std::uint64_t off, std::uint64_t n) const {
        if (n == 0) return;
        const auto r = mapped_range(a, off, n);
        detail::vk_check(dev().flushMappedMemoryRanges(1, &r, d()), "vkFlushMappedMemoryRanges");
    }
    void invalidate_host(const allocation& a, std::uint64_t off, std::uint64_t n) const {
        if (n == 0) return;
        const auto r = mapped_range(a, off, n);
        detail::vk_check(dev().invalidateMappedMemoryRanges(1, &r, d()), "vkInvalidateMappedMemoryRanges");
    }

    // ---- allocation internals ----------------------------------------------------------------

    [[nodiscard]] vulkan::heap_budget budget_locked() const {
        vulkan::heap_budget b = ctx_.budget(heap_used_, opt_.budget_fraction);
        if (opt_.heap_limit == 0) return b;
        const auto& heaps = ctx_.capabilities().memory.heaps;
        b.available.resize(heaps.size(), 0);
        for (std::size_t i = 0; i < heaps.size(); ++i) {
            const std::uint64_t left = opt_.heap_limit > heap_used_[i] ? opt_.heap_limit - heap_used_[i] : 0;
            b.available[i] = std::min(b.available[i], left);
        }
        b.source += "; capped at options::heap_limit = " + std::to_string(opt_.heap_limit) + " bytes per heap";
        return b;
    }

    allocation allocate_impl(const memory_request& req, std::error_code& ec, std::string& why) {
        ec.clear();
        const auto& caps = ctx_.capabilities();
        auto fail = [&](errc e, std::string msg) {
            ec = e;
            why = std::move(msg);
            return allocation{};
        };
        if (req.size_bytes > caps.max_allocation_size)
            return fail(errc::out_of_memory, "unibuf: vulkan: asked for " + std::to_string(req.size_bytes) +
                                                 " bytes; the device's largest single allocation "
                                                 "(maxMemoryAllocationSize) is " +
                                                 std::to_string(caps.max_allocation_size) + " bytes");
        std::lock_guard alk(alloc_m_);  // budget checks and allocations as one step
        allocation a;
        a.owner_ = this;
        a.size_ = req.size_bytes;
        // Probe the memory-type bits with the buffer the device will use.
        std::uint32_t allowed = ~0u;
        if (req.size_bytes > 0) {
            vk::Buffer probe;
            vk::Result r = create_buffer(req.size_bytes, device_usage(), probe);
            if (r != vk::Result::eSuccess)
                return fail(detail::vk_errc(r), "unibuf: vulkan: vkCreateBuffer of " + std::to_string(req.size_bytes) +
                                                    " bytes failed: " + detail::vk_result_name(r));
            vk::MemoryRequirements mr;
            dev().getBufferMemoryRequirements(probe, &mr, d());
            allowed = mr.memoryTypeBits;
            a.device_.buffer = probe;
        }
        vulkan::heap_budget budget = budget_locked();
        std::vector<std::string> extra_fallbacks;
        for (std::size_t attempt = 0;; ++attempt) {
            vulkan::memory_decision dec =
                vulkan::select_memory(req, caps.memory, budget, opt_.thresholds, allowed);
            if (!dec) {
                destroy_part_now(a.device_);
                a.owner_ = nullptr;
                std::string msg = dec.message;
                for (const auto& f : extra_fallbacks) msg += "; earlier: " + f;
                return fail(static_cast<errc>(dec.error.value()), msg);
            }
            vk::Result r = vk::Result::eSuccess;
            int failed_type = dec.device_type;
            r = allocate_part(a.device_, dec.device_type, req.size_bytes, !dec.staged);
            if (r == vk::Result::eSuccess && dec.staged) {
                failed_type = dec.staging_type;
                if (!a.staging_.buffer) {
                    r = create_buffer(req.size_bytes, staging_usage(), a.staging_.buffer);
                }
                if (r == vk::Result::eSuccess) r = allocate_part(a.staging_, dec.staging_type, req.size_bytes, true);
            }
            if (r == vk::Result::eSuccess) {
                a.report_ = std::move(dec.report);
                for (auto& f : extra_fallbacks) a.report_.fallbacks.push_back(std::move(f));
                a.host_coherent_ = a.report_.host_coherent;
                a.host_ = static_cast<std::byte*>(map_part(a.host_part(), r));
                if (r != vk::Result::eSuccess) {
                    release_memory_locked(a);
                    a.owner_ = nullptr;
                    return fail(errc::mapping_failed, "unibuf: vulkan: vkMapMemory of " + std::to_string(req.size_bytes) +
                                                          " bytes (memory type " + std::to_string(a.host_part().type) +
                                                          ") failed: " + detail::vk_result_name(r));
                }
                heap_used_[a.device_.heap] += a.device_.bytes;
                if (a.staging_.buffer) heap_used_[a.staging_.heap] += a.staging_.bytes;
                return a;
            }
            // The driver refused although the budget said yes: mark the heap full, decide again.
            const auto heap = caps.memory.types[static_cast<std::size_t>(failed_type)].heap;
            extra_fallbacks.push_back("vkAllocateMemory of " + std::to_string(req.size_bytes) + " bytes from memory type " +
                                      std::to_string(failed_type) + " (heap " + std::to_string(heap) +
                                      ") failed with " + detail::vk_result_name(r) + "; chose again without that heap");
            free_memory_now(a.device_);
            free_memory_now(a.staging_);
            if (a.staging_.buffer) dev().destroyBuffer(a.staging_.buffer, nullptr, d());
            a.staging_ = {};
            if (budget.available.size() < caps.memory.heaps.size()) budget.available.resize(caps.memory.heaps.size(), 0);
            budget.available[heap] = 0;
            if (attempt > caps.memory.heaps.size()) {
                destroy_part_now(a.device_);
                a.owner_ = nullptr;
                return fail(errc::out_of_memory, "unibuf: vulkan: out of memory: asked for " +
                                                     std::to_string(req.size_bytes) + " bytes; " + extra_fallbacks.back());
            }
        }
    }

    [[nodiscard]] static vk::BufferUsageFlags device_usage() noexcept {
        return vk::BufferUsageFlagBits::eStorageBuffer | vk::BufferUsageFlagBits::eTransferSrc |
               vk::BufferUsageFlagBits::eTransferDst;
    }
    [[nodiscard]] static vk::BufferUsageFlags staging_usage() noexcept {
        return vk::BufferUsageFlagBits::eTransferSrc | vk::BufferUsageFlagBits::eTransferDst;
    }

    vk::Result create_buffer(std::uint64_t size, vk::BufferUsageFlags usage, vk::Buffer& out) const {
        vk::BufferCreateInfo bci;
        bci.size = size;
        bci.usage = usage;
        bci.sharingMode = vk::SharingMode::eExclusive;
        return dev().createBuffer(&bci, nullptr, &out, d());
    }

    // Allocates and binds memory of `type` for `p.buffer`; mapped memory is sized to a multiple of
    // the non-coherent atom so that rounded flush ranges stay inside it.
    vk::Result allocate_part(allocation::part& p, int type, std::uint64_t size, bool mappable) {
        (void)size;
        vk::MemoryRequirements mr;
        dev().getBufferMemoryRequirements(p.buffer, &mr, d());
        std::uint64_t bytes = mr.size;
        const auto& caps = ctx_.capabilities();
        const bool host_visible = (caps.memory.types[static_cast<std::size_t>(type)].flags &
                                   vulkan::memory_property::host_visible) != 0;
        if (mappable && host_visible) {
            const std::uint64_t atom = std::max<std::uint64_t>(1, caps.non_coherent_atom);
            if (!detail::checked_align_up(mr.size, atom, bytes)) return vk::Result::eErrorOutOfDeviceMemory;
        }
        vk::MemoryAllocateInfo ai;
        ai.allocationSize = bytes;
        ai.memoryTypeIndex = static_cast<std::uint32_t>(type);
        vk::Result r = dev().allocateMemory(&ai, nullptr, &p.memory, d());
        if (r != vk::Result::eSuccess) {
            p.memory = vk::DeviceMemory{};
            return r;
        }
        // Raw entry points where Vulkan-Hpp's return type depends on its configuration macros.
        r = static_cast<vk::Result>(d().vkBindBufferMemory(static_cast<VkDevice>(dev()), static_cast<VkBuffer>(p.buffer),
                                                            static_cast<VkDeviceMemory>(p.memory), 0));
        if (r != vk::Result::eSuccess) {
            dev().freeMemory(p.memory, nullptr, d());
            p.memory = vk::DeviceMemory{};
            return r;
        }
        p.bytes = bytes;
        p.type = type;
        p.heap = caps.memory.types[static_cast<std::size_t>(type)].heap;
        return vk::Result::eSuccess;
    }

    void* map_part(const allocation::part& p, vk::Result& r) const {
        void* ptr = nullptr;
        r = dev().mapMemory(p.memory, 0, VK_WHOLE_SIZE, vk::MemoryMapFlags{}, &ptr, d());
        return ptr;
    }

    void free_memory_now(allocation::part& p) const noexcept {
        if (p.memory) dev().freeMemory(p.memory, nullptr, d());
        p.memory = vk::DeviceMemory{};
        p.bytes = 0;
        p.type = -1;
    }
    void destroy_part_now(allocation::part& p) const noexcept {
        free_memory_now(p);
        if (p.buffer) dev().destroyBuffer(p.buffer, nullptr, d());
        p.buffer = vk::Buffer{};
    }
    void release_memory_locked(allocation& a) noexcept {
        destroy_part_now(a.device_);
        destroy_part_now(a.staging_);
        a.host_ = nullptr;
    }

    // Called by allocation::release: frees now when no submitted work may use it, else later.
    void retire(allocation& a) noexcept {
        {
            std::lock_guard alk(alloc_m_);
            if (a.device_.memory) heap_used_[a.device_.heap] -= std::min(heap_used_[a.device_.heap], a.device_.bytes);
            if (a.staging_.memory) heap_used_[a.staging_.heap] -= std::min(heap_used_[a.staging_.heap], a.staging_.bytes);
        }
        garbage g;
        g.device = std::exchange(a.device_, allocation::part{});
        g.staging = std::exchange(a.staging_, allocation::part{});
        a.host_ = nullptr;
        bury(std::move(g));
    }
    void bury(garbage g) noexcept {
        std::lock_guard lk(m_);
        g.value = submitted_;
        if (g.value <= completed_.load(std::memory_order_acquire)) {
            destroy_garbage(g);
            return;
        }
        graveyard_.push_back(g);
    }
    void destroy_garbage(garbage& g) const noexcept {
        destroy_part_now(g.device);
        destroy_part_now(g.staging);
        if (g.pipeline) dev().destroyPipeline(g.pipeline, nullptr, d());
        if (g.layout) dev().destroyPipelineLayout(g.layout, nullptr, d());
        if (g.set_layout) dev().destroyDescriptorSetLayout(g.set_layout, nullptr, d());
        if (g.module) dev().destroyShaderModule(g.module, nullptr, d());
    }

    // ---- submission internals (m_ held) --------------------------------------------------------

    vk::CommandBuffer acquire_cb_locked() {
        reclaim_locked(false);
        if (!free_cbs_.empty()) {
            vk::CommandBuffer cb = free_cbs_.back();
            free_cbs_.pop_back();
            return cb;
        }
        vk::CommandBufferAllocateInfo ai;
        ai.commandPool = cmd_pool_;
        ai.level = vk::CommandBufferLevel::ePrimary;
        ai.commandBufferCount = 1;
        vk::CommandBuffer cb;
        detail::vk_check(dev().allocateCommandBuffers(&ai, &cb, d()), "vkAllocateCommandBuffers");
        return cb;
    }

    std::pair<vk::DescriptorPool, vk::DescriptorSet> allocate_set_locked(vk::DescriptorSetLayout layout,
                                                                         std::uint32_t bindings) {
        for (int tries = 0; tries < 2; ++tries) {
            if (!desc_pools_.empty()) {
                vk::DescriptorSetAllocateInfo ai;
                ai.descriptorPool = desc_pools_.back();
                ai.descriptorSetCount = 1;
                ai.pSetLayouts = &layout;
                vk::DescriptorSet set;
                const vk::Result r = dev().allocateDescriptorSets(&ai, &set, d());
                if (r == vk::Result::eSuccess) return {desc_pools_.back(), set};
                if (r != vk::Result::eErrorOutOfPoolMemory && r != vk::Result::eErrorFragmentedPool)
                    detail::vk_check(r, "vkAllocateDescriptorSets");
            }
            // A new pool: room for many sets of up to 16 bindings (bigger kernels get a bigger pool).
            constexpr std::uint32_t sets = 256;
            vk::DescriptorPoolSize ps;
            ps.type = vk::DescriptorType::eStorageBuffer;
            ps.descriptorCount = sets * std::max<std::uint32_t>(16, bindings);
            vk::DescriptorPoolCreateInfo pci;
            pci.flags = vk::DescriptorPoolCreateFlagBits::eFreeDescriptorSet;
            pci.maxSets = sets;
            pci.poolSizeCount = 1;
            pci.pPoolSizes = &ps;
            vk::DescriptorPool pool;
            detail::vk_check(dev().createDescriptorPool(&pci, nullptr, &pool, d()), "vkCreateDescriptorPool");
            desc_pools_.push_back(pool);
        }
        throw_error(errc::out_of_memory, "unibuf: vulkan: a fresh descriptor pool could not hold one set");
    }

    fence submit_locked(vk::CommandBuffer cb, std::vector<std::pair<vk::DescriptorPool, vk::DescriptorSet>>&& sets) {
        const std::uint64_t value = submitted_ + 1;
        vk::SubmitInfo si;
        si.commandBufferCount = 1;
        si.pCommandBuffers = &cb;
        vk::TimelineSemaphoreSubmitInfo ti;
        vk::Fence f;
        if (timeline_) {
            ti.signalSemaphoreValueCount = 1;
            ti.pSignalSemaphoreValues = &value;
            si.pNext = &ti;
            si.signalSemaphoreCount = 1;
            si.pSignalSemaphores = &timeline_sem_;
        } else {
            vk::FenceCreateInfo fci;
            detail::vk_check(dev().createFence(&fci, nullptr, &f, d()), "vkCreateFence");
        }
        const vk::Result r = ctx_.queue().submit(1, &si, f, d());
        if (r != vk::Result::eSuccess) {
            if (f) dev().destroyFence(f, nullptr, d());
            free_sets_locked(sets);
            free_cbs_.push_back(cb);
            detail::vk_check(r, "vkQueueSubmit");
        }
        submitted_ = value;
        in_flight_.push_back(submission{value, cb, f, std::move(sets)});
        return fence{value};
    }

    void free_sets_locked(std::vector<std::pair<vk::DescriptorPool, vk::DescriptorSet>>& sets) noexcept {
        for (auto& [pool, set] : sets) (void)dev().freeDescriptorSets(pool, 1, &set, d());
        sets.clear();
    }

    void destroy_submission(submission& s) noexcept {
        free_sets_locked(s.sets);
        if (s.cb) dev().freeCommandBuffers(cmd_pool_, 1, &s.cb, d());
        if (s.fence) {
            if (fence_waiters_.load(std::memory_order_acquire) == 0) dev().destroyFence(s.fence, nullptr, d());
            else retired_fences_.push_back(s.fence);
        }
    }

    // Recycles submissions that completed, frees garbage whose work completed.
    void reclaim_locked(bool everything) noexcept {
        const std::uint64_t done = everything ? ~std::uint64_t{0} : poll_locked_noexcept();
        while (!in_flight_.empty() && in_flight_.front().value <= done) {
            submission& s = in_flight_.front();
            free_sets_locked(s.sets);
            if (s.fence) {
                if (fence_waiters_.load(std::memory_order_acquire) == 0) dev().destroyFence(s.fence, nullptr, d());
                else retired_fences_.push_back(s.fence);
            }
            if (!everything) {
                (void)d().vkResetCommandBuffer(static_cast<VkCommandBuffer>(s.cb), 0);
                free_cbs_.push_back(s.cb);
            } else {
                dev().freeCommandBuffers(cmd_pool_, 1, &s.cb, d());
            }
            in_flight_.pop_front();
        }
        if (fence_waiters_.load(std::memory_order_acquire) == 0) {
            for (auto f : retired_fences_) dev().destroyFence(f, nullptr, d());
            retired_fences_.clear();
        }
        while (!graveyard_.empty() && graveyard_.front().value <= done) {
            destroy_garbage(graveyard_.front());
            graveyard_.pop_front();
        }
    }

    // The newest completed value (m_ held for the VkFence path).
    std::uint64_t poll_locked_noexcept() const noexcept {
        std::uint64_t done = completed_.load(std::memory_order_acquire);
        if (timeline_) {
            std::uint64_t v = 0;
            if (dev().getSemaphoreCounterValue(timeline_sem_, &v, d()) == vk::Result::eSuccess) done = std::max(done, v);
        } else {
            for (const auto& s : in_flight_) {
                if (s.value <= done) continue;
                if (dev().getFenceStatus(s.fence, d()) != vk::Result::eSuccess) break;
                done = s.value;
            }
        }
        note_completed(done);
        return done;
    }

    void note_completed(std::uint64_t v) const noexcept {
        std::uint64_t cur = completed_.load(std::memory_order_relaxed);
        while (v > cur && !completed_.compare_exchange_weak(cur, v, std::memory_order_acq_rel)) {
        }
    }

    // ---- waiting ----------------------------------------------------------------------------

    std::uint64_t poll() const {
        if (timeline_) {
            std::uint64_t v = 0;
            detail::vk_check(dev().getSemaphoreCounterValue(timeline_sem_, &v, d()), "vkGetSemaphoreCounterValue");
            note_completed(v);
            return completed_.load(std::memory_order_acquire);
        }
        std::lock_guard lk(m_);
        std::uint64_t done = completed_.load(std::memory_order_acquire);
        for (const auto& s : in_flight_) {
            if (s.value <= done) continue;
            const vk::Result r = dev().getFenceStatus(s.fence, d());
            if (r == vk::Result::eNotReady) break;
            detail::vk_check(r, "vkGetFenceStatus");
            done = s.value;
        }
        note_completed(done);
        return done;
    }

    bool spin_until(const fence& f, std::chrono::steady_clock::time_point until) const {
        for (;;) {
            if (poll() >= f.value) return true;
            if (std::chrono::steady_clock::now() >= until) return false;
            for (int i = 0; i < 16; ++i) detail::cpu_relax();
        }
    }

    bool block_until(const fence& f, std::chrono::steady_clock::time_point until) const {
        const auto left = until - std::chrono::steady_clock::now();
        const std::uint64_t ns =
            left.count() <= 0 ? 0 : static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(left).count());
        if (timeline_) {
            vk::SemaphoreWaitInfo wi;
            wi.semaphoreCount = 1;
            wi.pSemaphores = &timeline_sem_;
            wi.pValues = &f.value;
            const vk::Result r = dev().waitSemaphores(&wi, ns, d());
            if (r == vk::Result::eTimeout) return false;
            detail::vk_check(r, "vkWaitSemaphores");
            note_completed(f.value);
            return true;
        }
        vk::Fence handle;
        {
            std::lock_guard lk(m_);
            for (const auto& s : in_flight_)
                if (s.value >= f.value) {
                    handle = s.fence;
                    break;
                }
            if (!handle) return poll_locked_noexcept() >= f.value;
            fence_waiters_.fetch_add(1, std::memory_order_acq_rel);
        }
        const vk::Result r = dev().waitForFences(1, &handle, VK_TRUE, ns, d());
        fence_waiters_.fetch_sub(1, std::memory_order_acq_rel);
        if (r == vk::Result::eTimeout) return false;
        detail::vk_check(r, "vkWaitForFences");
        return poll() >= f.value;
    }

    vulkan_context ctx_;
    options opt_;
    bool timeline_ = false;
    vk::CommandPool cmd_pool_;
    vk::Semaphore timeline_sem_;

    mutable std::mutex m_;  // queue, command pool, descriptor pools, in-flight list, graveyard
    std::uint64_t submitted_ = 0;
    mutable std::atomic<std::uint64_t> completed_{0};
    mutable std::atomic<int> fence_waiters_{0};
    std::deque<submission> in_flight_;
    std::vector<vk::CommandBuffer> free_cbs_;
    std::vector<vk::DescriptorPool> desc_pools_;
    std::deque<garbage> graveyard_;
    std::vector<vk::Fence> retired_fences_;

    mutable std::mutex alloc_m_;  // heap_used_, allocation decisions
    std::vector<std::uint64_t> heap_used_;
};

// ---- out-of-class definitions ---------------------------------------------------------------

inline void vulkan_backend::allocation::release() noexcept {
    if (owner_ != nullptr && (device_.buffer || staging_.buffer)) owner_->retire(*this);
    owner_ = nullptr;
    host_ = nullptr;
}

inline vulkan_kernel::vulkan_kernel(vulkan_backend& backend, std::span<const std::uint32_t> spirv,
                                    std::uint32_t bindings, std::uint32_t push_constant_bytes, const char* entry)
    : owner_(&backend), bindings_(bindings), push_bytes_(push_constant_bytes) {
    const auto& caps = backend.context().capabilities();
    if (spirv.empty() || spirv[0] != 0x07230203u)
        throw_error(errc::invalid_argument, "unibuf: vulkan: kernel: the code is not SPIR-V (" +
                                                std::to_string(spirv.size()) + " words, no SPIR-V magic number)");
    if (push_constant_bytes % 4 != 0 || push_constant_bytes > caps.max_push_constants_size)
        throw_error(errc::invalid_argument, "unibuf: vulkan: kernel: " + std::to_string(push_constant_bytes) +
                                                " bytes of push constants; need a multiple of 4 up to " +
                                                std::to_string(caps.max_push_constants_size));
    const auto& d = backend.d();
    vk::Device dev = backend.dev();
    struct cleanup {  // frees what was made so far if a later step throws
        vulkan_kernel* k;
        bool done = false;
        ~cleanup() {
            if (!done) k->reset();
        }
    } guard{this};

    vk::ShaderModuleCreateInfo smci;
    smci.codeSize = spirv.size_bytes();
    smci.pCode = spirv.data();
    detail::vk_check(dev.createShaderModule(&smci, nullptr, &module_, d), "vkCreateShaderModule");

    std::vector<vk::DescriptorSetLayoutBinding> lb(bindings);
    for (std::uint32_t i = 0; i < bindings; ++i) {
        lb[i].binding = i;
        lb[i].descriptorType = vk::DescriptorType::eStorageBuffer;
        lb[i].descriptorCount = 1;
        lb[i].stageFlags = vk::ShaderStageFlagBits::eCompute;
    }
    vk::DescriptorSetLayoutCreateInfo dlci;
    dlci.bindingCount = bindings;
    dlci.pBindings = lb.data();
    detail::vk_check(dev.createDescriptorSetLayout(&dlci, nullptr, &set_layout_, d), "vkCreateDescriptorSetLayout");

    vk::PushConstantRange pcr;
    pcr.stageFlags = vk::ShaderStageFlagBits::eCompute;
    pcr.offset = 0;
    pcr.size = push_constant_bytes;
    vk::PipelineLayoutCreateInfo plci;
    plci.setLayoutCount = 1;
    plci.pSetLayouts = &set_layout_;
    plci.pushConstantRangeCount = push_constant_bytes > 0 ? 1 : 0;
    plci.pPushConstantRanges = &pcr;
    detail::vk_check(dev.createPipelineLayout(&plci, nullptr, &layout_, d), "vkCreatePipelineLayout");

    vk::ComputePipelineCreateInfo cpci;
    cpci.flags = vk::PipelineCreateFlagBits::eDispatchBase;  // large dispatches are split (batch::dispatch)
    cpci.stage.stage = vk::ShaderStageFlagBits::eCompute;
    cpci.stage.module = module_;
    cpci.stage.pName = entry;
    cpci.layout = layout_;
    detail::vk_check(dev.createComputePipelines(vk::PipelineCache{}, 1, &cpci, nullptr, &pipeline_, d),
                     "vkCreateComputePipelines");
    guard.done = true;
}

inline void vulkan_kernel::reset() noexcept {
    if (owner_ == nullptr) return;
    vulkan_backend::garbage g;
    g.module = std::exchange(module_, {});
    g.set_layout = std::exchange(set_layout_, {});
    g.layout = std::exchange(layout_, {});
    g.pipeline = std::exchange(pipeline_, {});
    owner_->bury(std::move(g));
    owner_ = nullptr;
}

inline void vulkan_backend::batch::begin_command() {
    if (!cb_) {
        cb_ = owner_->acquire_cb_locked();
        vk::CommandBufferBeginInfo bi;
        bi.flags = vk::CommandBufferUsageFlagBits::eOneTimeSubmit;
        detail::vk_check(cb_.begin(&bi, owner_->d()), "vkBeginCommandBuffer");
    }
    // Earlier commands (this batch and earlier submissions) wrote with shaders or transfers; this
    // command may read or write the same bytes with either.
    vk::MemoryBarrier mb;
    mb.srcAccessMask = vk::AccessFlagBits::eShaderWrite | vk::AccessFlagBits::eTransferWrite;
    mb.dstAccessMask = vk::AccessFlagBits::eShaderRead | vk::AccessFlagBits::eShaderWrite |
                       vk::AccessFlagBits::eTransferRead | vk::AccessFlagBits::eTransferWrite;
    const auto stages = vk::PipelineStageFlagBits::eComputeShader | vk::PipelineStageFlagBits::eTransfer;
    cb_.pipelineBarrier(stages, stages, vk::DependencyFlags{}, 1, &mb, 0, nullptr, 0, nullptr, owner_->d());
    ++commands_;
}

inline void vulkan_backend::batch::require_open(const char* what) const {
    if (owner_ == nullptr)
        throw_error(errc::invalid_argument, std::string("unibuf: vulkan: batch::") + what +
                                                " on an empty batch (moved from, submitted or discarded); "
                                                "start another with begin()");
}

inline void vulkan_backend::batch::copy(const allocation& src, std::uint64_t src_off, const allocation& dst,
                                        std::uint64_t dst_off, std::uint64_t n) {
    require_open("copy");
    check(src, src_off, n, "copy source");
    check(dst, dst_off, n, "copy destination");
    if (n == 0) return;
    if (&src == &dst && src_off < dst_off + n && dst_off < src_off + n)
        throw_error(errc::invalid_argument, "unibuf: vulkan: copy of " + std::to_string(n) + " bytes from offset " +
                                                std::to_string(src_off) + " to offset " + std::to_string(dst_off) +
                                                " overlaps within one buffer; Vulkan copies need disjoint ranges");
    record_copy(src.buffer(), src_off, dst.buffer(), dst_off, n);
}

inline void vulkan_backend::batch::record_copy(vk::Buffer src, std::uint64_t src_off, vk::Buffer dst,
                                               std::uint64_t dst_off, std::uint64_t n) {
    begin_command();
    vk::BufferCopy region;
    region.srcOffset = src_off;
    region.dstOffset = dst_off;
    region.size = n;
    cb_.copyBuffer(src, dst, 1, &region, owner_->d());
}

inline void vulkan_backend::batch::upload(const allocation& a, std::uint64_t off, std::uint64_t n) {
    require_open("upload");
    check(a, off, n, "upload");
    if (n == 0) return;
    if (!a.host_coherent_) owner_->flush_host(a, off, n);
    if (!a.staged()) return;
    record_copy(a.staging_buffer(), off, a.buffer(), off, n);
}

inline void vulkan_backend::batch::download(const allocation& a, std::uint64_t off, std::uint64_t n) {
    require_open("download");
    check(a, off, n, "download");
    if (n == 0 || !a.staged()) return;
    record_copy(a.buffer(), off, a.staging_buffer(), off, n);
}

inline void vulkan_backend::batch::dispatch(const vulkan_kernel& k, dispatch_size groups,
                                            std::span<const bound_range<vulkan_backend>> ranges,
                                            std::span<const std::byte> push) {
    require_open("dispatch");
    const auto& caps = owner_->ctx_.capabilities();
    if (!k.pipeline())
        throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch of an empty (moved-from) kernel");
    if (ranges.size() != k.bindings())
        throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch binds " + std::to_string(ranges.size()) +
                                                " buffers; the kernel has " + std::to_string(k.bindings()) + " bindings");
    if (push.size() != k.push_constant_bytes())
        throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch pushes " + std::to_string(push.size()) +
                                                " bytes; the kernel's push-constant block is " +
                                                std::to_string(k.push_constant_bytes()) + " bytes");
    const std::uint32_t g[3] = {groups.x, groups.y, groups.z};
    for (int i = 0; i < 3; ++i)
        if (g[i] == 0)
            throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch of 0 groups in dimension " + std::to_string(i) +
                                                    "; each dimension needs at least 1");
    std::vector<vk::DescriptorBufferInfo> infos(ranges.size());
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        const auto& r = ranges[i];
        if (r.allocation == nullptr) throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch binding " + std::to_string(i) + " is null");
        check(*r.allocation, r.offset, r.size, "dispatch binding");
        if (r.size == 0 || r.offset % caps.min_storage_offset_alignment != 0 || r.size > caps.max_storage_buffer_range)
            throw_error(errc::invalid_argument,
                        "unibuf: vulkan: dispatch binding " + std::to_string(i) + " at offset " + std::to_string(r.offset) +
                            " of " + std::to_string(r.size) + " bytes; the device needs offsets aligned to " +
                            std::to_string(caps.min_storage_offset_alignment) + " and 1 to " +
                            std::to_string(caps.max_storage_buffer_range) + " bytes");
        infos[i].buffer = r.allocation->buffer();
        infos[i].offset = r.offset;
        infos[i].range = r.size;
    }
    begin_command();
    const auto& d = owner_->d();
    vk::Device dev = owner_->dev();
    vk::DescriptorSet set;
    if (!ranges.empty()) {
        auto ps = owner_->allocate_set_locked(k.set_layout(), k.bindings());
        sets_.push_back(ps);
        set = ps.second;
        std::vector<vk::WriteDescriptorSet> writes(ranges.size());
        for (std::size_t i = 0; i < ranges.size(); ++i) {
            writes[i].dstSet = set;
            writes[i].dstBinding = static_cast<std::uint32_t>(i);
            writes[i].descriptorCount = 1;
            writes[i].descriptorType = vk::DescriptorType::eStorageBuffer;
            writes[i].pBufferInfo = &infos[i];
        }
        dev.updateDescriptorSets(static_cast<std::uint32_t>(writes.size()), writes.data(), 0, nullptr, d);
    }
    cb_.bindPipeline(vk::PipelineBindPoint::eCompute, k.pipeline(), d);
    if (set) cb_.bindDescriptorSets(vk::PipelineBindPoint::eCompute, k.pipeline_layout(), 0, 1, &set, 0, nullptr, d);
    if (!push.empty())
        cb_.pushConstants(k.pipeline_layout(), vk::ShaderStageFlagBits::eCompute, 0,
                          static_cast<std::uint32_t>(push.size()), push.data(), d);
    // Group counts above maxComputeWorkGroupCount (65535 on many devices) run as several
    // vkCmdDispatchBase calls; gl_WorkGroupID / gl_GlobalInvocationID include the base. The bases
    // count in 64 bits: a 32-bit base + limit would wrap for counts near 2^32 (limits of 2^31 - 1).
    const std::uint64_t lim[3] = {std::max<std::uint32_t>(1, caps.max_group_count[0]),
                                  std::max<std::uint32_t>(1, caps.max_group_count[1]),
                                  std::max<std::uint32_t>(1, caps.max_group_count[2])};
    for (std::uint64_t bz = 0; bz < groups.z; bz += lim[2])
        for (std::uint64_t by = 0; by < groups.y; by += lim[1])
            for (std::uint64_t bx = 0; bx < groups.x; bx += lim[0]) {
                const auto cx = static_cast<std::uint32_t>(std::min<std::uint64_t>(lim[0], groups.x - bx));
                const auto cy = static_cast<std::uint32_t>(std::min<std::uint64_t>(lim[1], groups.y - by));
                const auto cz = static_cast<std::uint32_t>(std::min<std::uint64_t>(lim[2], groups.z - bz));
                if (bx == 0 && by == 0 && bz == 0) cb_.dispatch(cx, cy, cz, d);
                else cb_.dispatchBase(static_cast<std::uint32_t>(bx), static_cast<std::uint32_t>(by),
                                      static_cast<std::uint32_t>(bz), cx, cy, cz, d);
            }
}

inline vulkan_backend::fence vulkan_backend::batch::submit() {
    if (owner_ == nullptr || !cb_) {
        discard();
        return {};
    }
    const auto& d = owner_->d();
    // Device writes of this submission become visible to host reads after its fence.
    vk::MemoryBarrier mb;
    mb.srcAccessMask = vk::AccessFlagBits::eShaderWrite | vk::AccessFlagBits::eTransferWrite;
    mb.dstAccessMask = vk::AccessFlagBits::eHostRead;
    cb_.pipelineBarrier(vk::PipelineStageFlagBits::eComputeShader | vk::PipelineStageFlagBits::eTransfer,
                        vk::PipelineStageFlagBits::eHost, vk::DependencyFlags{}, 1, &mb, 0, nullptr, 0, nullptr, d);
    detail::vk_check(static_cast<vk::Result>(d.vkEndCommandBuffer(static_cast<VkCommandBuffer>(cb_))), "vkEndCommandBuffer");
    vk::CommandBuffer cb = std::exchange(cb_, {});
    fence f = owner_->submit_locked(cb, std::move(sets_));
    sets_.clear();
    lock_.unlock();
    owner_ = nullptr;
    commands_ = 0;
    return f;
}

inline void vulkan_backend::batch::discard() noexcept {
    if (owner_ == nullptr) return;
    if (cb_) {
        (void)owner_->d().vkEndCommandBuffer(static_cast<VkCommandBuffer>(cb_));
        (void)owner_->d().vkResetCommandBuffer(static_cast<VkCommandBuffer>(cb_), 0);
        owner_->free_cbs_.push_back(cb_);
        cb_ = vk::CommandBuffer{};
    }
    owner_->free_sets_locked(sets_);
    if (lock_.owns_lock()) lock_.unlock();
    owner_ = nullptr;
    commands_ = 0;
}

} // namespace unibuf
