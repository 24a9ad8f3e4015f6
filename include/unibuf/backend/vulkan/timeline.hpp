/// @file timeline.hpp
/// @brief The Vulkan backend's queue timeline: submissions numbered 1, 2, 3... (values of one
/// timeline semaphore, or one VkFence per submission where the device has no timeline
/// semaphores), the reclaim of what completed submissions used (command buffers, descriptor sets,
/// objects retired while work could still use them), and the wait strategies.
///
/// Part of `vulkan_backend` (include backend/vulkan/vulkan_backend.hpp); `detail::vk_timeline` is
/// the backend's own, the public names here are `wait_strategy` and its `to_string`.
#pragma once

#include "../../core/detail/cpu_relax.hpp"
#include "../../core/error.hpp"
#include "../../core/timeout.hpp"
#include "context.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief How a thread waits for a fence. The round trips of each are measured: see bench/RESULTS.md.
enum class wait_strategy : std::uint8_t {
    block,            ///< vkWaitSemaphores / vkWaitForFences: sleeps in the driver (the slower wake-up)
    spin,             ///< polls the timeline value / fence status (the fastest round trip), burns a core
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

namespace detail {

/// Descriptor sets a submission uses, with the pools they came from.
using vk_descriptor_sets = std::vector<std::pair<vk::DescriptorPool, vk::DescriptorSet>>;

/// Device objects whose destruction waits for the submission `value` to complete: the buffers
/// and memory of a freed allocation, or the pipeline objects of a reset kernel.
struct vk_retired {
    /// One buffer and the memory bound to it (either may be null).
    struct buffer_memory {
        vk::Buffer buffer;
        vk::DeviceMemory memory;
    };
    std::uint64_t value = 0;
    buffer_memory device, staging;
    vk::ShaderModule module;
    vk::DescriptorSetLayout set_layout;
    vk::PipelineLayout layout;
    vk::Pipeline pipeline;
};

/// The queue timeline of one `vulkan_backend` (see the file comment). Thread-safe; the `_locked`
/// members require the lock of `lock()` (which a batch holds from `begin()` to `submit()`).
class vk_timeline {
public:
    /// Creates the command pool and, where `use_timeline`, the timeline semaphore.
    /// @throws std::system_error from Vulkan object creation
    vk_timeline(const vulkan_context& ctx, bool use_timeline) : ctx_(&ctx), timeline_(use_timeline) {
        vk::CommandPoolCreateInfo pci;
        pci.flags = vk::CommandPoolCreateFlagBits::eResetCommandBuffer;
        pci.queueFamilyIndex = ctx.queue_family();
        vk_check(dev().createCommandPool(&pci, nullptr, &cmd_pool_, d()), "vkCreateCommandPool");
        if (timeline_) {
            vk::SemaphoreTypeCreateInfo ti;
            ti.semaphoreType = vk::SemaphoreType::eTimeline;
            ti.initialValue = 0;
            vk::SemaphoreCreateInfo sci;
            sci.pNext = &ti;
            vk::Result r = dev().createSemaphore(&sci, nullptr, &timeline_sem_, d());
            if (r != vk::Result::eSuccess) {
                dev().destroyCommandPool(cmd_pool_, nullptr, d());
                vk_check(r, "vkCreateSemaphore(timeline)");
            }
        }
    }
    vk_timeline(const vk_timeline&) = delete;
    vk_timeline& operator=(const vk_timeline&) = delete;

    /// Destroys everything, waited for or not (the backend waits, bounded, before).
    ~vk_timeline() {
        std::lock_guard lk(m_);
        reclaim_locked(true);
        for (auto& s : in_flight_) destroy_submission(s);
        in_flight_.clear();
        for (auto& g : graveyard_) destroy_retired(g);
        graveyard_.clear();
        for (auto f : retired_fences_) dev().destroyFence(f, nullptr, d());
        for (auto p : desc_pools_) dev().destroyDescriptorPool(p, nullptr, d());
        if (cmd_pool_) dev().destroyCommandPool(cmd_pool_, nullptr, d());
        if (timeline_sem_) dev().destroySemaphore(timeline_sem_, nullptr, d());
    }

    /// True when submissions signal a timeline semaphore (false: a VkFence each).
    [[nodiscard]] bool uses_timeline() const noexcept { return timeline_; }

    // ---- submission (lock held) --------------------------------------------------------------

    /// The submission lock: queue, command pool, descriptor pools, in-flight list, graveyard.
    [[nodiscard]] std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(m_); }

    /// The value of the newest submission.
    [[nodiscard]] std::uint64_t submitted_locked() const noexcept { return submitted_; }

    /// A command buffer ready to begin: a recycled one, else a new one.
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
        vk_check(dev().allocateCommandBuffers(&ai, &cb, d()), "vkAllocateCommandBuffers");
        return cb;
    }

    /// A descriptor set of `layout` (`bindings` storage buffers) and the pool it came from.
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
                    vk_check(r, "vkAllocateDescriptorSets");
            }
            add_descriptor_pool_locked(bindings);
        }
        throw_error(errc::out_of_memory, "unibuf: vulkan: a fresh descriptor pool could not hold one set");
    }

    /// Submits the ended command buffer `cb`, which uses `sets`; returns its value.
    /// @throws std::system_error device_lost / out_of_memory from vkQueueSubmit (`cb` and `sets`
    /// are recycled)
    std::uint64_t submit_locked(vk::CommandBuffer cb, vk_descriptor_sets&& sets) {
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
            vk_check(dev().createFence(&fci, nullptr, &f, d()), "vkCreateFence");
        }
        const vk::Result r = ctx_->queue().submit(1, &si, f, d());
        if (r != vk::Result::eSuccess) {
            if (f) dev().destroyFence(f, nullptr, d());
            free_sets_locked(sets);
            free_cbs_.push_back(cb);
            vk_check(r, "vkQueueSubmit");
        }
        submitted_ = value;
        in_flight_.push_back(submission{value, cb, f, std::move(sets)});
        return value;
    }

    /// Drops a recorded, never submitted command buffer and its descriptor sets.
    void discard_locked(vk::CommandBuffer cb, vk_descriptor_sets& sets) noexcept {
        if (cb) {
            (void)d().vkEndCommandBuffer(static_cast<VkCommandBuffer>(cb));
            (void)d().vkResetCommandBuffer(static_cast<VkCommandBuffer>(cb), 0);
            free_cbs_.push_back(cb);
        }
        free_sets_locked(sets);
    }

    // ---- retiring objects --------------------------------------------------------------------

    /// Destroys `g` now when no submitted work may use it, else once the newest submission completed.
    void bury(vk_retired g) noexcept {
        std::lock_guard lk(m_);
        g.value = submitted_;
        if (g.value <= completed_.load(std::memory_order_acquire)) {
            destroy_retired(g);
            return;
        }
        graveyard_.push_back(g);
    }

    // ---- fences --------------------------------------------------------------------------------

    /// The value of the newest submission.
    [[nodiscard]] std::uint64_t submitted() const {
        std::lock_guard lk(m_);
        return submitted_;
    }

    /// True when the submission `value` has completed (never blocks).
    /// @throws std::system_error device_lost
    [[nodiscard]] bool is_complete(std::uint64_t value) const {
        if (value <= completed_.load(std::memory_order_acquire)) return true;
        return poll() >= value;
    }

    /// Waits up to `timeout` for the submission `value` with strategy `w`; false on timeout.
    /// @throws std::system_error device_lost
    [[nodiscard]] bool wait(std::uint64_t value, std::chrono::nanoseconds timeout, wait_strategy w,
                            std::chrono::nanoseconds spin_budget) const {
        if (is_complete(value)) return true;
        const auto deadline = deadline_after(timeout);
        switch (w) {
            case wait_strategy::spin: return spin_until(value, deadline);
            case wait_strategy::block: return block_until(value, deadline);
            case wait_strategy::spin_then_block: {
                const auto spin_end = std::min(deadline, deadline_after(spin_budget));
                if (spin_until(value, spin_end)) return true;
                return block_until(value, deadline);
            }
        }
        return false;
    }

private:
    struct submission {
        std::uint64_t value = 0;
        vk::CommandBuffer cb;
        vk::Fence fence;  ///< VkFence fallback only
        vk_descriptor_sets sets;
    };

    [[nodiscard]] const vk::DispatchLoaderDynamic& d() const noexcept { return ctx_->dispatcher(); }
    [[nodiscard]] vk::Device dev() const noexcept { return ctx_->device(); }

    // A new descriptor pool: room for many sets of up to 16 bindings (bigger kernels get a bigger pool).
    void add_descriptor_pool_locked(std::uint32_t bindings) {
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
        vk_check(dev().createDescriptorPool(&pci, nullptr, &pool, d()), "vkCreateDescriptorPool");
        desc_pools_.push_back(pool);
    }

    void free_sets_locked(vk_descriptor_sets& sets) noexcept {
        for (auto& [pool, set] : sets) (void)dev().freeDescriptorSets(pool, 1, &set, d());
        sets.clear();
    }

    // A VkFence is destroyed only while no thread waits on one (a waiter holds its handle).
    void release_fence_locked(vk::Fence f) noexcept {
        if (!f) return;
        if (fence_waiters_.load(std::memory_order_acquire) == 0) dev().destroyFence(f, nullptr, d());
        else retired_fences_.push_back(f);
    }

    void destroy_submission(submission& s) noexcept {
        free_sets_locked(s.sets);
        if (s.cb) dev().freeCommandBuffers(cmd_pool_, 1, &s.cb, d());
        release_fence_locked(s.fence);
    }

    void destroy_buffer_memory(vk_retired::buffer_memory& p) const noexcept {
        if (p.memory) dev().freeMemory(p.memory, nullptr, d());
        if (p.buffer) dev().destroyBuffer(p.buffer, nullptr, d());
        p = {};
    }

    void destroy_retired(vk_retired& g) const noexcept {
        destroy_buffer_memory(g.device);
        destroy_buffer_memory(g.staging);
        if (g.pipeline) dev().destroyPipeline(g.pipeline, nullptr, d());
        if (g.layout) dev().destroyPipelineLayout(g.layout, nullptr, d());
        if (g.set_layout) dev().destroyDescriptorSetLayout(g.set_layout, nullptr, d());
        if (g.module) dev().destroyShaderModule(g.module, nullptr, d());
    }

    // Recycles submissions that completed, frees retired objects whose work completed.
    void reclaim_locked(bool everything) noexcept {
        const std::uint64_t done = everything ? ~std::uint64_t{0} : poll_locked_noexcept();
        while (!in_flight_.empty() && in_flight_.front().value <= done) {
            submission& s = in_flight_.front();
            free_sets_locked(s.sets);
            release_fence_locked(s.fence);
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
            destroy_retired(graveyard_.front());
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
            vk_check(dev().getSemaphoreCounterValue(timeline_sem_, &v, d()), "vkGetSemaphoreCounterValue");
            note_completed(v);
            return completed_.load(std::memory_order_acquire);
        }
        std::lock_guard lk(m_);
        std::uint64_t done = completed_.load(std::memory_order_acquire);
        for (const auto& s : in_flight_) {
            if (s.value <= done) continue;
            const vk::Result r = dev().getFenceStatus(s.fence, d());
            if (r == vk::Result::eNotReady) break;
            vk_check(r, "vkGetFenceStatus");
            done = s.value;
        }
        note_completed(done);
        return done;
    }

    bool spin_until(std::uint64_t value, std::chrono::steady_clock::time_point until) const {
        for (;;) {
            if (poll() >= value) return true;
            if (std::chrono::steady_clock::now() >= until) return false;
            for (int i = 0; i < 16; ++i) cpu_relax();
        }
    }

    bool block_until(std::uint64_t value, std::chrono::steady_clock::time_point until) const {
        const auto left = until - std::chrono::steady_clock::now();
        const std::uint64_t ns =
            left.count() <= 0 ? 0 : static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(left).count());
        return timeline_ ? block_on_semaphore(value, ns) : block_on_fence(value, ns);
    }

    bool block_on_semaphore(std::uint64_t value, std::uint64_t ns) const {
        vk::SemaphoreWaitInfo wi;
        wi.semaphoreCount = 1;
        wi.pSemaphores = &timeline_sem_;
        wi.pValues = &value;
        const vk::Result r = dev().waitSemaphores(&wi, ns, d());
        if (r == vk::Result::eTimeout) return false;
        vk_check(r, "vkWaitSemaphores");
        note_completed(value);
        return true;
    }

    // Waits on the VkFence of the first submission at or after `value`; the fence stays alive
    // while this thread waits (fence_waiters_ defers its destruction).
    bool block_on_fence(std::uint64_t value, std::uint64_t ns) const {
        vk::Fence handle;
        {
            std::lock_guard lk(m_);
            for (const auto& s : in_flight_)
                if (s.value >= value) {
                    handle = s.fence;
                    break;
                }
            if (!handle) return poll_locked_noexcept() >= value;
            fence_waiters_.fetch_add(1, std::memory_order_acq_rel);
        }
        const vk::Result r = dev().waitForFences(1, &handle, VK_TRUE, ns, d());
        fence_waiters_.fetch_sub(1, std::memory_order_acq_rel);
        if (r == vk::Result::eTimeout) return false;
        vk_check(r, "vkWaitForFences");
        return poll() >= value;
    }

    const vulkan_context* ctx_;
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
    std::deque<vk_retired> graveyard_;
    std::vector<vk::Fence> retired_fences_;
};

} // namespace detail
} // namespace unibuf
