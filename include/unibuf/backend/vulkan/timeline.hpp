/// @file timeline.hpp
/// @brief The Vulkan backend's queue timeline: submissions numbered 1, 2, 3... (values of one
/// timeline semaphore, or one VkFence per submission where the device has no timeline
/// semaphores; with a transfer queue, values of one timeline semaphore per queue, see
/// `vk_timeline`), the reclaim of what completed submissions used (command buffers, descriptor sets,
/// objects retired while work could still use them), and the wait strategies.
///
/// Part of `vulkan_backend` (include backend/vulkan/vulkan_backend.hpp); `detail::vk_timeline` is
/// the backend's own, the public names here are `wait_strategy`, `copy_queue` and their `to_string`,
/// and `vulkan_wake_semaphore` / `vulkan_wait_result` of `vulkan_backend::wait_or_wake` (a wait for
/// a fence that another thread can end early, the fence waiter's).
#pragma once

#include "../../core/detail/cpu_relax.hpp"
#include "../../core/error.hpp"
#include "../../core/timeout.hpp"
#include "../fault_injection.hpp"
#include "context.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
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

/// @brief Which queue runs the backend's copy-only submissions: staged flushes and invalidates,
/// `copy`, batches of copies only (the producer's staging copies). A batch with a dispatch always
/// runs on the compute queue. Without a transfer queue (`vulkan_context::transfer_queue()` null,
/// or VkFences instead of timeline semaphores) every submission runs on the compute queue.
enum class copy_queue : std::uint8_t {
    automatic,  ///< the transfer queue for submissions copying at least `transfer_min_bytes`, else the compute queue
    transfer,   ///< the transfer queue for every copy-only submission
    compute,    ///< the compute queue for everything
    both,       ///< copy-only submissions of at least `transfer_min_bytes` split in two halves by bytes, one per
                ///< queue, copying at the same time (unless their copies depend on each other); smaller ones: compute
};

/// @brief Printable name of a copy queue choice.
[[nodiscard]] constexpr std::string_view to_string(copy_queue q) noexcept {
    switch (q) {
        case copy_queue::automatic: return "automatic";
        case copy_queue::transfer: return "transfer";
        case copy_queue::compute: return "compute";
        case copy_queue::both: return "both";
    }
    return "?";
}

namespace detail {
class vk_timeline;
} // namespace detail

/// @brief What ended a `vulkan_backend::wait_or_wake`.
enum class vulkan_wait_result : std::uint8_t {
    complete,  ///< the fence completed
    woken,     ///< the wake semaphore reached the value asked for; the fence had not completed
    timeout,   ///< neither within the bound
};

/// @brief Printable name of a `vulkan_wait_result`.
[[nodiscard]] constexpr std::string_view to_string(vulkan_wait_result r) noexcept {
    switch (r) {
        case vulkan_wait_result::complete: return "complete";
        case vulkan_wait_result::woken: return "woken";
        case vulkan_wait_result::timeout: return "timeout";
    }
    return "?";
}

/// @brief A timeline semaphore of the backend's device that only the host signals: one thread
/// blocks in `vulkan_backend::wait_or_wake(f, wake, wake.value() + 1, bound)`, another ends that
/// wait early with `signal()`. Its counter starts at 0 and only grows, by one per `signal()`.
/// Made by `vulkan_backend::make_wake_semaphore()` (empty where fences are VkFences: the device
/// then has no timeline semaphores); move-only RAII, destroy it before the backend. Not
/// thread-safe: one thread at a time calls `signal()` / `value()` (the fence waiter does, under its lock).
class vulkan_wake_semaphore {
public:
    /// @brief An empty one: `signal()` returns false, a wait on it waits for the fence alone.
    vulkan_wake_semaphore() noexcept = default;
    vulkan_wake_semaphore(const vulkan_wake_semaphore&) = delete;
    vulkan_wake_semaphore& operator=(const vulkan_wake_semaphore&) = delete;
    /// @brief Takes over `o`'s semaphore; `o` is empty.
    vulkan_wake_semaphore(vulkan_wake_semaphore&& o) noexcept
        : ctx_(std::exchange(o.ctx_, nullptr)), sem_(std::exchange(o.sem_, vk::Semaphore{})),
          value_(std::exchange(o.value_, 0)) {}
    /// @brief Destroys the own semaphore, takes over `o`'s; `o` is empty.
    vulkan_wake_semaphore& operator=(vulkan_wake_semaphore&& o) noexcept {
        if (this != &o) {
            reset();
            ctx_ = std::exchange(o.ctx_, nullptr);
            sem_ = std::exchange(o.sem_, vk::Semaphore{});
            value_ = std::exchange(o.value_, 0);
        }
        return *this;
    }
    /// @brief Destroys the semaphore (no thread may wait on it any more).
    ~vulkan_wake_semaphore() { reset(); }

    /// @brief True when it holds a semaphore.
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(sem_); }
    /// @brief The value of the newest `signal()` (0 before the first): a wait for `value() + 1`
    /// ends at the next `signal()`.
    [[nodiscard]] std::uint64_t value() const noexcept { return value_; }
    /// @brief The semaphore (null when empty).
    [[nodiscard]] vk::Semaphore handle() const noexcept { return sem_; }
    /// @brief The device it belongs to (null when empty).
    [[nodiscard]] vk::Device device() const noexcept { return ctx_ != nullptr ? ctx_->device() : vk::Device{}; }

    /// @brief Raises the counter by one from the host (vkSignalSemaphore), which ends the waits
    /// for that value. False, counter unchanged, when empty or when the driver refused (out of
    /// memory): a waiter then sees the value only when its bounded wait ends.
    [[nodiscard]] bool signal() noexcept {
        if (!sem_) return false;
        vk::SemaphoreSignalInfo si;
        si.semaphore = sem_;
        si.value = value_ + 1;
        if (ctx_->device().signalSemaphore(&si, ctx_->dispatcher()) != vk::Result::eSuccess) return false;
        ++value_;
        return true;
    }

    /// @brief Destroys the semaphore now; empty afterwards.
    void reset() noexcept {
        if (sem_) ctx_->device().destroySemaphore(sem_, nullptr, ctx_->dispatcher());
        sem_ = vk::Semaphore{};
        ctx_ = nullptr;
        value_ = 0;
    }

private:
    friend class detail::vk_timeline;
    vulkan_wake_semaphore(const vulkan_context& ctx, vk::Semaphore sem) noexcept : ctx_(&ctx), sem_(sem) {}

    const vulkan_context* ctx_ = nullptr;
    vk::Semaphore sem_;
    std::uint64_t value_ = 0;
};

namespace detail {

/// The queue a submission goes to.
enum class vk_lane : std::uint8_t { compute = 0, transfer = 1 };

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
///
/// With a transfer lane, submissions still take one count 1, 2, 3... across both queues: a
/// compute submission signals the compute semaphore with its value, a transfer submission the
/// transfer semaphore, and each submission first waits (on the device) for the newest value the
/// other queue was given. The two queues thus run one after the other in submission order, as one
/// queue did, and a value is complete once either semaphore has reached it.
class vk_timeline {
public:
    /// Creates the command pools and, where `use_timeline`, the timeline semaphores. The transfer
    /// lane exists where `use_timeline` and the context has a transfer queue, or where
    /// `emulate_transfer` (it then submits to the compute queue: the bookkeeping of two queues on
    /// a device with one family).
    /// @throws std::system_error from Vulkan object creation
    vk_timeline(const vulkan_context& ctx, bool use_timeline, bool emulate_transfer = false)
        : ctx_(&ctx), timeline_(use_timeline) {
        lanes_[0].queue = ctx.queue();
        lanes_[0].family = ctx.queue_family();
        if (timeline_ && ctx.transfer_queue()) {
            lanes_[1].queue = ctx.transfer_queue();
            lanes_[1].family = ctx.transfer_queue_family();
        } else if (timeline_ && emulate_transfer) {
            lanes_[1].queue = ctx.queue();
            lanes_[1].family = ctx.queue_family();
        }
        has_transfer_ = static_cast<bool>(lanes_[1].queue);
        for (std::size_t i = 0; i < (has_transfer_ ? 2u : 1u); ++i) {
            const auto [r, call] = create_lane(lanes_[i]);
            if (r != vk::Result::eSuccess) {
                destroy_lanes();
                vk_check(r, call);
            }
        }
    }
    vk_timeline(const vk_timeline&) = delete;
    vk_timeline& operator=(const vk_timeline&) = delete;

    /// Destroys everything, waited for or not (the backend waits, bounded, before).
    ~vk_timeline() {
        std::lock_guard lk(m_);
        // Whatever completed is confirmed to a layer that may listen, even where the context has no
        // messenger of its own (an adopted device whose instance validates): the last completions
        // may have been seen by polling only, e.g. after a submission that failed.
        confirm_completed_locked(poll_locked_noexcept(), true);
        reclaim_locked(true);
        for (auto& s : in_flight_) destroy_submission(s);
        in_flight_.clear();
        for (auto& g : graveyard_) destroy_retired(g);
        graveyard_.clear();
        for (auto f : retired_fences_) dev().destroyFence(f, nullptr, d());
        for (auto p : desc_pools_) dev().destroyDescriptorPool(p, nullptr, d());
        destroy_lanes();
    }

    /// True when submissions signal a timeline semaphore (false: a VkFence each).
    [[nodiscard]] bool uses_timeline() const noexcept { return timeline_; }

    /// The backend's fault injector (`vulkan_backend::options::faults`; null: none). Set once,
    /// before the first submission.
    void set_faults(std::shared_ptr<fault_injector> f) noexcept { faults_ = std::move(f); }
    /// The fault injector (null when none).
    [[nodiscard]] fault_injector* faults() const noexcept { return faults_.get(); }
    /// True once an injected device loss happened (every later submission and every wait for a
    /// value not complete throw errc::device_lost, as after VK_ERROR_DEVICE_LOST).
    [[nodiscard]] bool lost() const noexcept { return lost_.load(std::memory_order_acquire); }

    /// After an injected device loss the device itself still runs what was submitted before: waits
    /// (at most `timeout`, never throwing) until it did, so that nothing is destroyed while the
    /// device (and the validation layer) counts it in use. Nothing to do without a loss.
    void settle_after_loss(std::chrono::nanoseconds timeout) const noexcept {
        if (!lost()) return;
#if UNIBUF_EXCEPTIONS
        try {
            const std::uint64_t v = submitted();
            if (v > completed_.load(std::memory_order_acquire)) (void)block_until(v, deadline_after(timeout));
            (void)poll();
        } catch (...) {
            // a real loss as well: nothing more to wait for
        }
#else
        const std::uint64_t v = submitted();
        if (v > completed_.load(std::memory_order_acquire)) (void)block_until(v, deadline_after(timeout));
#endif
    }

    /// True when copy-only submissions can go to a transfer queue (its own lane).
    [[nodiscard]] bool has_transfer_lane() const noexcept { return has_transfer_; }

    /// Where copy-only submissions go (the backend's options; not while a batch is open).
    void set_copy_policy(copy_queue q, std::uint64_t min_bytes) {
        std::lock_guard lk(m_);
        policy_ = q;
        min_bytes_ = min_bytes;
    }

    /// The lane of a copy-only submission of `bytes` bytes.
    [[nodiscard]] vk_lane lane_for_copies_locked(std::uint64_t bytes) const noexcept {
        if (!has_transfer_) return vk_lane::compute;
        switch (policy_) {
            case copy_queue::transfer: return vk_lane::transfer;
            case copy_queue::compute:
            case copy_queue::both: return vk_lane::compute;
            case copy_queue::automatic: return bytes >= min_bytes_ ? vk_lane::transfer : vk_lane::compute;
        }
        return vk_lane::compute;
    }

    /// True when a copy-only submission of `bytes` bytes is split over both queues (copy_queue::both).
    [[nodiscard]] bool split_copies_locked(std::uint64_t bytes) const noexcept {
        return has_transfer_ && policy_ == copy_queue::both && bytes >= min_bytes_;
    }

    // ---- submission (lock held) --------------------------------------------------------------

    /// The submission lock: queue, command pool, descriptor pools, in-flight list, graveyard.
    [[nodiscard]] std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(m_); }

    /// The value of the newest submission.
    [[nodiscard]] std::uint64_t submitted_locked() const noexcept { return submitted_; }

    /// A command buffer of `lane`'s pool ready to begin: a recycled one, else a new one.
    vk::CommandBuffer acquire_cb_locked(vk_lane lane = vk_lane::compute) {
        reclaim_locked(false);
        auto& free_cbs = lane_of(lane).free_cbs;
        if (!free_cbs.empty()) {
            vk::CommandBuffer cb = free_cbs.back();
            free_cbs.pop_back();
            return cb;
        }
        vk::CommandBufferAllocateInfo ai;
        ai.commandPool = lane_of(lane).pool;
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

    /// Submits the ended command buffer `cb` (from `lane`'s pool), which uses `sets`, to `lane`'s
    /// queue; returns its value. On the transfer lane's timeline the submission first waits for the
    /// other queue's newest value (see the class comment).
    /// @throws std::system_error device_lost / out_of_memory from vkQueueSubmit, or injected by the
    /// fault injector before anything is submitted (`cb` and `sets` are recycled)
    std::uint64_t submit_locked(vk::CommandBuffer cb, vk_descriptor_sets&& sets, vk_lane lane = vk_lane::compute) {
        const std::uint64_t value = submitted_ + 1;
        lane_state& here = lane_of(lane);
        if (faults_ || lost()) {  // options::faults: an injected failure, before anything is submitted
            std::string why;
            if (const vk::Result fault = injected_submit_failure_locked(value, lane, why); fault != vk::Result::eSuccess) {
                free_sets_locked(sets);
                here.free_cbs.push_back(cb);
                throw_error(vk_errc(fault), why);
            }
        }
        const lane_state& other = lane_of(lane == vk_lane::compute ? vk_lane::transfer : vk_lane::compute);
        const bool wait_other = has_transfer_ && other.last > here.other_waited;
        vk::SubmitInfo si;
        vk::TimelineSemaphoreSubmitInfo ti;
        fill_batch(si, ti, &cb, wait_other ? sem_point{&other.sem, &other.last} : sem_point{},
                   timeline_ ? sem_point{&here.sem, &value} : sem_point{});
        vk::Fence f;
        if (!timeline_) {
            vk::FenceCreateInfo fci;
            vk_check(dev().createFence(&fci, nullptr, &f, d()), "vkCreateFence");
        }
        const vk::Result r = here.queue.submit(1, &si, f, d());
        if (r != vk::Result::eSuccess) {
            if (f) dev().destroyFence(f, nullptr, d());
            free_sets_locked(sets);
            here.free_cbs.push_back(cb);
            vk_check(r, "vkQueueSubmit");
        }
        if (wait_other) here.other_waited = other.last;
        note_submitted_locked(submission{value, lane, cb, f, std::move(sets)});
        return value;
    }

    /// Submits the two halves of a split copy-only submission, which copy at the same time: `tcb` to
    /// the transfer queue as value v (after the compute queue's newest value), `ccb` to the compute
    /// queue (after the transfer queue's values before v) followed by a batch without commands that
    /// waits for v and signals v + 1, the value returned: complete once both halves are.
    /// @throws std::system_error device_lost / out_of_memory from vkQueueSubmit
    std::uint64_t submit_split_locked(vk::CommandBuffer ccb, vk::CommandBuffer tcb) {
        lane_state& c = lanes_[0];
        lane_state& t = lanes_[1];
        const std::uint64_t v1 = submitted_ + 1, v2 = submitted_ + 2;
        // Counted as one submission, before either half is submitted: nothing waits for a half
        // that never comes.
        if (faults_ || lost()) {
            std::string why;
            if (const vk::Result fault = injected_submit_failure_locked(v2, vk_lane::compute, why);
                fault != vk::Result::eSuccess) {
                t.free_cbs.push_back(tcb);
                c.free_cbs.push_back(ccb);
                throw_error(vk_errc(fault), why);
            }
        }
        // The transfer half.
        {
            const bool wait = c.last > t.other_waited;
            vk::SubmitInfo si;
            vk::TimelineSemaphoreSubmitInfo ti;
            fill_batch(si, ti, &tcb, wait ? sem_point{&c.sem, &c.last} : sem_point{}, sem_point{&t.sem, &v1});
            const vk::Result r = t.queue.submit(1, &si, vk::Fence{}, d());
            if (r != vk::Result::eSuccess) {
                t.free_cbs.push_back(tcb);
                c.free_cbs.push_back(ccb);
                vk_check(r, "vkQueueSubmit(transfer half)");
            }
            if (wait) t.other_waited = c.last;
            note_submitted_locked(submission{v1, vk_lane::transfer, tcb, {}, {}});
        }
        // The compute half, then the join. Earlier transfer submissions (before v1) come first:
        // the compute half waits for them.
        std::uint64_t earlier = 0;
        for (auto it = in_flight_.rbegin(); it != in_flight_.rend(); ++it)
            if (it->lane == vk_lane::transfer && it->value < v1) {
                earlier = it->value;
                break;
            }
        const bool wait_earlier = earlier > c.other_waited;
        vk::SubmitInfo si[2];
        vk::TimelineSemaphoreSubmitInfo ti[2];
        fill_batch(si[0], ti[0], &ccb, wait_earlier ? sem_point{&t.sem, &earlier} : sem_point{}, sem_point{});
        fill_batch(si[1], ti[1], nullptr, sem_point{&t.sem, &v1}, sem_point{&c.sem, &v2});
        const vk::Result r = c.queue.submit(2, si, vk::Fence{}, d());
        if (r != vk::Result::eSuccess) {
            c.free_cbs.push_back(ccb);
            vk_check(r, "vkQueueSubmit(compute half)");
        }
        c.other_waited = v1;
        note_submitted_locked(submission{v2, vk_lane::compute, ccb, {}, {}});
        return v2;
    }

    /// Drops a recorded, never submitted command buffer of `lane` and its descriptor sets.
    void discard_locked(vk::CommandBuffer cb, vk_descriptor_sets& sets, vk_lane lane = vk_lane::compute) noexcept {
        if (cb) {
            (void)d().vkEndCommandBuffer(static_cast<VkCommandBuffer>(cb));
            (void)d().vkResetCommandBuffer(static_cast<VkCommandBuffer>(cb), 0);
            lane_of(lane).free_cbs.push_back(cb);
        }
        free_sets_locked(sets);
    }

    // ---- retiring objects --------------------------------------------------------------------

    /// Destroys `g` now when no submitted work may use it, else once the newest submission completed.
    void bury(vk_retired g) noexcept {
        std::lock_guard lk(m_);
        g.value = submitted_;
        if (g.value <= completed_.load(std::memory_order_acquire)) {
            confirm_to_layers_locked(lanes_[0].last, lanes_[1].last);
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
        if (poll() >= value) return true;
        if (lost())
            vk_check(vk::Result::eErrorDeviceLost,
                     ("the wait for fence " + std::to_string(value) +
                      " (injected fault: the device was lost before it completed)").c_str());
        return false;
    }

    /// Waits up to `timeout` for the submission `value` with strategy `w`; false on timeout.
    /// @throws std::system_error device_lost
    [[nodiscard]] bool wait(std::uint64_t value, std::chrono::nanoseconds timeout, wait_strategy w,
                            std::chrono::nanoseconds spin_budget) const {
        if (is_complete(value)) return true;
        if (faults_ && faults_->hit(fault_point::wait)) return false;  // an injected timeout
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

    // ---- waits another thread can end -------------------------------------------------------

    /// A fresh wake semaphore (timeline, initial value 0); empty on the VkFence path.
    /// @throws std::system_error from vkCreateSemaphore
    [[nodiscard]] vulkan_wake_semaphore make_wake() const {
        if (!timeline_) return {};
        vk::SemaphoreTypeCreateInfo ti;
        ti.semaphoreType = vk::SemaphoreType::eTimeline;
        ti.initialValue = 0;
        vk::SemaphoreCreateInfo sci;
        sci.pNext = &ti;
        vk::Semaphore s;
        vk_check(dev().createSemaphore(&sci, nullptr, &s, d()), "vkCreateSemaphore(timeline, wake)");
        return vulkan_wake_semaphore(*ctx_, s);
    }

    /// Blocks, never spinning, until `value` completed or `wake` reached `wake_value`, at most
    /// `timeout`. Timeline path: one vkWaitSemaphores with VK_SEMAPHORE_WAIT_ANY_BIT over the lane
    /// semaphores that can complete `value` (the compute one; the transfer one too once used: a
    /// value completes when either reached it, see the class comment) and `wake`. VkFence path, or
    /// `wake` empty: the wait for `value` alone (a VkFence cannot be signalled by the host).
    /// @throws std::system_error device_lost
    [[nodiscard]] vulkan_wait_result wait_or_wake(std::uint64_t value, const vulkan_wake_semaphore& wake,
                                                  std::uint64_t wake_value, std::chrono::nanoseconds timeout) const {
        if (is_complete(value)) return vulkan_wait_result::complete;
        if (faults_ && faults_->hit(fault_point::wait)) return vulkan_wait_result::timeout;  // an injected timeout
        if (!timeline_ || !wake)
            return block_until(value, deadline_after(timeout)) ? vulkan_wait_result::complete
                                                               : vulkan_wait_result::timeout;
        vk::Semaphore sems[3];
        std::uint64_t values[3];
        std::uint32_t n = 0;
        sems[n] = lanes_[0].sem;
        values[n++] = value;
        if (transfer_used()) {
            sems[n] = lanes_[1].sem;
            values[n++] = value;
        }
        sems[n] = wake.handle();
        values[n++] = wake_value;
        vk::SemaphoreWaitInfo wi;
        wi.flags = vk::SemaphoreWaitFlagBits::eAny;
        wi.semaphoreCount = n;
        wi.pSemaphores = sems;
        wi.pValues = values;
        const std::uint64_t ns = timeout.count() <= 0 ? 0 : static_cast<std::uint64_t>(timeout.count());
        const vk::Result r = dev().waitSemaphores(&wi, ns, d());
        if (r != vk::Result::eTimeout) vk_check(r, "vkWaitSemaphores(fence or wake)");
        if (poll() >= value) return vulkan_wait_result::complete;
        return r == vk::Result::eTimeout ? vulkan_wait_result::timeout : vulkan_wait_result::woken;
    }

private:
    struct submission {
        std::uint64_t value = 0;
        vk_lane lane = vk_lane::compute;
        vk::CommandBuffer cb;
        vk::Fence fence;  ///< VkFence fallback only
        vk_descriptor_sets sets;
    };

    /// One queue's submission objects and where its count stands.
    struct lane_state {
        vk::Queue queue;
        std::uint32_t family = 0;
        vk::CommandPool pool;
        vk::Semaphore sem;  ///< its timeline semaphore (none on the VkFence path)
        std::vector<vk::CommandBuffer> free_cbs;
        std::uint64_t last = 0;           ///< the newest value submitted to this queue
        std::uint64_t other_waited = 0;   ///< the newest value of the other queue this queue waited for
    };

    [[nodiscard]] const vk::DispatchLoaderDynamic& d() const noexcept { return ctx_->dispatcher(); }
    [[nodiscard]] vk::Device dev() const noexcept { return ctx_->device(); }
    [[nodiscard]] lane_state& lane_of(vk_lane l) noexcept { return lanes_[static_cast<std::size_t>(l)]; }
    [[nodiscard]] const lane_state& lane_of(vk_lane l) const noexcept { return lanes_[static_cast<std::size_t>(l)]; }

    // A timeline semaphore and the value a batch waits for or signals on it (none when `sem` is
    // null). Vulkan reads both through pointers: they must outlive the submit call.
    struct sem_point {
        const vk::Semaphore* sem = nullptr;
        const std::uint64_t* value = nullptr;
    };

    // Fills one batch of a submission: the command buffer `cb` (none when null), one wait before
    // any of its commands (all stages) and one signal after them. The one filler of every
    // submission of the timeline (submit_locked, both halves of submit_split_locked).
    static void fill_batch(vk::SubmitInfo& si, vk::TimelineSemaphoreSubmitInfo& ti, const vk::CommandBuffer* cb,
                           sem_point wait, sem_point signal) noexcept {
        static constexpr vk::PipelineStageFlags all_commands = vk::PipelineStageFlagBits::eAllCommands;
        si = vk::SubmitInfo{};
        ti = vk::TimelineSemaphoreSubmitInfo{};
        if (cb != nullptr) {
            si.commandBufferCount = 1;
            si.pCommandBuffers = cb;
        }
        if (wait.sem != nullptr) {
            ti.waitSemaphoreValueCount = 1;
            ti.pWaitSemaphoreValues = wait.value;
            si.waitSemaphoreCount = 1;
            si.pWaitSemaphores = wait.sem;
            si.pWaitDstStageMask = &all_commands;
        }
        if (signal.sem != nullptr) {
            ti.signalSemaphoreValueCount = 1;
            ti.pSignalSemaphoreValues = signal.value;
            si.signalSemaphoreCount = 1;
            si.pSignalSemaphores = signal.sem;
        }
        if (wait.sem != nullptr || signal.sem != nullptr) si.pNext = &ti;
    }

    // Books the submission `s`, just given to its queue, as the newest one.
    void note_submitted_locked(submission s) {
        submitted_ = s.value;
        lane_of(s.lane).last = s.value;
        if (s.lane == vk_lane::transfer) transfer_used_.store(true, std::memory_order_release);
        in_flight_.push_back(std::move(s));
    }

    // The command pool and, on the timeline path, the semaphore of `l`; the failing call's name.
    std::pair<vk::Result, const char*> create_lane(lane_state& l) {
        vk::CommandPoolCreateInfo pci;
        pci.flags = vk::CommandPoolCreateFlagBits::eResetCommandBuffer;
        pci.queueFamilyIndex = l.family;
        vk::Result r = dev().createCommandPool(&pci, nullptr, &l.pool, d());
        if (r != vk::Result::eSuccess) return {r, "vkCreateCommandPool"};
        if (!timeline_) return {r, ""};
        vk::SemaphoreTypeCreateInfo ti;
        ti.semaphoreType = vk::SemaphoreType::eTimeline;
        ti.initialValue = 0;
        vk::SemaphoreCreateInfo sci;
        sci.pNext = &ti;
        r = dev().createSemaphore(&sci, nullptr, &l.sem, d());
        return {r, "vkCreateSemaphore(timeline)"};
    }

    void destroy_lanes() noexcept {
        for (auto& l : lanes_) {
            if (l.pool) dev().destroyCommandPool(l.pool, nullptr, d());
            if (l.sem) dev().destroySemaphore(l.sem, nullptr, d());
            l.pool = vk::CommandPool{};
            l.sem = vk::Semaphore{};
            l.free_cbs.clear();
        }
    }

    // True once anything went to the transfer queue: until then its semaphore is not polled.
    [[nodiscard]] bool transfer_used() const noexcept { return transfer_used_.load(std::memory_order_acquire); }

    // The newest value either semaphore reached (see the class comment).
    [[nodiscard]] vk::Result counter(std::uint64_t& v) const {
        vk::Result r = dev().getSemaphoreCounterValue(lanes_[0].sem, &v, d());
        if (r != vk::Result::eSuccess || !transfer_used()) return r;
        std::uint64_t t = 0;
        r = dev().getSemaphoreCounterValue(lanes_[1].sem, &t, d());
        v = std::max(v, t);
        return r;
    }

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
        if (s.cb) dev().freeCommandBuffers(lane_of(s.lane).pool, 1, &s.cb, d());
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

    // With two queues, a validation layer learns that a queue's submissions completed only from a
    // host wait it can follow through the other queue's semaphore: after polling the counters, it
    // may still count the objects of a completed submission as in use (VUID-vkFreeMemory-memory-00677
    // on the H200, a submission that had waited for the transfer queue). A zero-timeout
    // vkWaitSemaphores on the values the host saw complete tells it, before anything is reset or
    // freed. Only where a messenger collects messages (a layer may listen); returns at once.
    void confirm_to_layers_locked(std::uint64_t compute_value, std::uint64_t transfer_value,
                                  bool always = false) const noexcept {
        if (!transfer_used() || !(always || ctx_->validation_enabled() || ctx_->collects_messages())) return;
        vk::Semaphore sems[2];
        std::uint64_t values[2];
        std::uint32_t n = 0;
        if (transfer_value > 0) {
            sems[n] = lanes_[1].sem;
            values[n++] = transfer_value;
        }
        if (compute_value > 0) {
            sems[n] = lanes_[0].sem;
            values[n++] = compute_value;
        }
        if (n == 0) return;
        vk::SemaphoreWaitInfo wi;
        wi.semaphoreCount = n;
        wi.pSemaphores = sems;
        wi.pValues = values;
        (void)dev().waitSemaphores(&wi, 0, d());
    }

    // Confirms to the layers (see confirm_to_layers_locked) the newest submission of each queue
    // that completed by `done` and whose objects are about to be recycled or freed; `always`: even
    // where the context collects no messages.
    void confirm_completed_locked(std::uint64_t done, bool always) const noexcept {
        std::uint64_t newest[2] = {0, 0};  // per queue, the newest completed submission to recycle
        for (const auto& s : in_flight_) {
            if (s.value > done) break;
            newest[static_cast<std::size_t>(s.lane)] = s.value;
        }
        if (always || (!graveyard_.empty() && graveyard_.front().value <= done))
            for (std::size_t i = 0; i < 2; ++i)
                if (lanes_[i].last <= done) newest[i] = std::max(newest[i], lanes_[i].last);
        confirm_to_layers_locked(newest[0], newest[1], always);
    }

    // Recycles submissions that completed, frees retired objects whose work completed.
    void reclaim_locked(bool everything) noexcept {
        const std::uint64_t done = everything ? ~std::uint64_t{0} : poll_locked_noexcept();
        if (!everything) confirm_completed_locked(done, false);
        while (!in_flight_.empty() && in_flight_.front().value <= done) {
            submission& s = in_flight_.front();
            free_sets_locked(s.sets);
            release_fence_locked(s.fence);
            if (!everything) {
                (void)d().vkResetCommandBuffer(static_cast<VkCommandBuffer>(s.cb), 0);
                lane_of(s.lane).free_cbs.push_back(s.cb);
            } else {
                dev().freeCommandBuffers(lane_of(s.lane).pool, 1, &s.cb, d());
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
            if (counter(v) == vk::Result::eSuccess) done = std::max(done, v);
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

    // The injected failure of the submission `value` to `lane` (options::faults), before anything
    // is submitted: eErrorDeviceLost once the device was lost (now or before),
    // eErrorOutOfDeviceMemory for an injected submit failure; `why` names the call and what was
    // asked. eSuccess without an injector or a fault.
    vk::Result injected_submit_failure_locked(std::uint64_t value, vk_lane lane, std::string& why) {
        const auto asked = [&] {
            return "vkQueueSubmit of submission " + std::to_string(value) + " to the " +
                   (lane == vk_lane::compute ? "compute" : "transfer") + " queue";
        };
        if (lost()) {
            why = "unibuf: vulkan: " + asked() + " failed: VK_ERROR_DEVICE_LOST (the device was lost, injected fault)";
            return vk::Result::eErrorDeviceLost;
        }
        if (!faults_) return vk::Result::eSuccess;
        why = fault_injector::failure(faults_.get(), "vulkan", fault_point::submit,
                                      [&] { return asked() + ", as VK_ERROR_OUT_OF_DEVICE_MEMORY; nothing was submitted"; });
        if (!why.empty()) return vk::Result::eErrorOutOfDeviceMemory;
        why = fault_injector::failure(faults_.get(), "vulkan", fault_point::device_lost, asked);
        if (why.empty()) return vk::Result::eSuccess;
        lost_.store(true, std::memory_order_release);
        why += ": VK_ERROR_DEVICE_LOST; the device was lost, every later submission fails";
        return vk::Result::eErrorDeviceLost;
    }

    // ---- waiting ----------------------------------------------------------------------------

    std::uint64_t poll() const {
        if (timeline_) {
            std::uint64_t v = 0;
            vk_check(counter(v), "vkGetSemaphoreCounterValue");
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

    // Either semaphore reaching `value` completes it (see the class comment): VK_SEMAPHORE_WAIT_ANY.
    bool block_on_semaphore(std::uint64_t value, std::uint64_t ns) const {
        const vk::Semaphore sems[2] = {lanes_[0].sem, lanes_[1].sem};
        const std::uint64_t values[2] = {value, value};
        vk::SemaphoreWaitInfo wi;
        const bool both = transfer_used();
        if (both) wi.flags = vk::SemaphoreWaitFlagBits::eAny;
        wi.semaphoreCount = both ? 2 : 1;
        wi.pSemaphores = sems;
        wi.pValues = values;
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
    bool has_transfer_ = false;
    std::atomic<bool> transfer_used_{false};
    lane_state lanes_[2];  // compute, transfer
    copy_queue policy_ = copy_queue::automatic;
    std::uint64_t min_bytes_ = 0;

    mutable std::mutex m_;  // queue, command pool, descriptor pools, in-flight list, graveyard
    std::uint64_t submitted_ = 0;
    mutable std::atomic<std::uint64_t> completed_{0};
    mutable std::atomic<int> fence_waiters_{0};
    std::deque<submission> in_flight_;
    std::vector<vk::DescriptorPool> desc_pools_;
    std::deque<vk_retired> graveyard_;
    std::vector<vk::Fence> retired_fences_;
    std::shared_ptr<fault_injector> faults_;  // vulkan_backend::options::faults (null: none)
    std::atomic<bool> lost_{false};           // an injected device loss
};

} // namespace detail
} // namespace unibuf
