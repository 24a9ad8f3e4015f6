/// @file batch.hpp
/// @brief `vulkan_batch`: command recording of the Vulkan backend. Copies, staging uploads and
/// downloads and dispatches recorded into one command buffer, submitted as one fence. A dispatch
/// and the first command of a submission come behind a global memory barrier; a copy comes behind
/// one when it touches bytes an earlier copy since the last barrier wrote, or writes bytes it read.
/// A batch of copies only goes to the transfer queue where the backend chooses so (`copy_queue`).
///
/// Part of `vulkan_backend` (include backend/vulkan/vulkan_backend.hpp, which names this type
/// `vulkan_backend::batch`, starts batches with `begin()` and defines `dispatch`, whose ranges
/// name the backend).
#pragma once

#include "../../core/config.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"
#include "../concepts.hpp"
#include "../detail/timeline_fence.hpp"
#include "allocation.hpp"
#include "context.hpp"
#include "kernel.hpp"
#include "timeline.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace unibuf {

class vulkan_backend;

/// @brief Several commands recorded into one submission (one fence); holds the backend's
/// submission lock from `vulkan_backend::begin()` until `submit()` or destruction (which discards it).
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
class vulkan_batch {
public:
    /// @brief Takes over `o`'s commands and lock; `o` is empty afterwards.
    vulkan_batch(vulkan_batch&& o) noexcept
        : ctx_(o.ctx_), owner_(std::exchange(o.owner_, nullptr)), lock_(std::move(o.lock_)),
          cb_(std::exchange(o.cb_, {})), sets_(std::move(o.sets_)), commands_(std::exchange(o.commands_, 0)),
          lane_(std::exchange(o.lane_, detail::vk_lane::compute)), pending_(std::move(o.pending_)),
          pending_bytes_(std::exchange(o.pending_bytes_, 0)), run_(std::move(o.run_)),
          barrier_due_(std::exchange(o.barrier_due_, true)) {
        o.pending_.clear();
        o.run_.clear();
        o.sets_.clear();
    }
    vulkan_batch& operator=(vulkan_batch&&) = delete;
    vulkan_batch(const vulkan_batch&) = delete;
    vulkan_batch& operator=(const vulkan_batch&) = delete;
    /// @brief Discards what was recorded and not submitted, and releases the submission lock.
    ~vulkan_batch() { discard(); }

    /// @brief Device copy of `n` bytes between the device copies of two allocations.
    /// @throws std::system_error out_of_range, invalid_argument (overlap within one buffer, an
    /// empty allocation, an empty batch)
    void copy(const vulkan_allocation& src, std::uint64_t src_off, const vulkan_allocation& dst,
              std::uint64_t dst_off, std::uint64_t n) {
        require_open("copy");
        detail::vk_check_range(src, src_off, n, "copy source");
        detail::vk_check_range(dst, dst_off, n, "copy destination");
        if (n == 0) return;
        if (&src == &dst && src_off < dst_off + n && dst_off < src_off + n)
            throw_error(errc::invalid_argument, "unibuf: vulkan: copy of " + std::to_string(n) + " bytes from offset " +
                                                    std::to_string(src_off) + " to offset " + std::to_string(dst_off) +
                                                    " overlaps within one buffer; Vulkan copies need disjoint ranges");
        add_copy(src.buffer(), src_off, dst.buffer(), dst_off, n);
    }

    /// @brief Staged: copies `[off, off+n)` staging → device (after flushing a non-coherent
    /// staging range). Zero-copy: flushes the atom-rounded range if non-coherent; records nothing.
    /// @throws std::system_error out_of_range, invalid_argument (an empty allocation or batch)
    void upload(const vulkan_allocation& a, std::uint64_t off, std::uint64_t n) {
        require_open("upload");
        detail::vk_check_range(a, off, n, "upload");
        if (n == 0) return;
        if (!a.host_coherent()) detail::vk_allocator::flush_mapped(*ctx_, a, off, n);
        if (!a.staged()) return;
        add_copy(a.staging_buffer(), off, a.buffer(), off, n);
    }

    /// @brief Staged: copies `[off, off+n)` device → staging (the host must still wait for the
    /// fence and `invalidate_host` a non-coherent staging range). Zero-copy: records nothing.
    /// @throws std::system_error out_of_range, invalid_argument (an empty allocation or batch)
    void download(const vulkan_allocation& a, std::uint64_t off, std::uint64_t n) {
        require_open("download");
        detail::vk_check_range(a, off, n, "download");
        if (n == 0 || !a.staged()) return;
        add_copy(a.buffer(), off, a.staging_buffer(), off, n);
    }

    /// @brief Records a dispatch of `k` over `ranges` (binding i = ranges[i]) with `push` bytes.
    /// Group counts beyond the device's maxComputeWorkGroupCount are split into several
    /// vkCmdDispatchBase calls (the kernel sees the same gl_GlobalInvocationID).
    /// Defined in backend/vulkan/vulkan_backend.hpp (the ranges name the backend).
    /// @throws std::system_error invalid_argument (binding count, push size, a zero group
    ///         count, offset alignment, range size, an empty kernel, allocation or batch), out_of_range
    void dispatch(const vulkan_kernel& k, dispatch_size groups, std::span<const bound_range<vulkan_backend>> ranges,
                  std::span<const std::byte> push);

    /// @brief Number of commands recorded so far (0 once empty: moved from, submitted or discarded).
    [[nodiscard]] std::size_t size() const noexcept { return commands_; }

    /// @brief Ends and submits the batch; returns its fence (complete if nothing was recorded).
    /// A batch of copies only goes to the queue the backend's `copy_queue` choice names for its
    /// bytes; a batch with a dispatch goes to the compute queue.
    /// @throws std::system_error device_lost / out_of_memory from vkQueueSubmit
    detail::timeline_fence<vulkan_backend> submit() {
        if (owner_ == nullptr || (!cb_ && pending_.empty())) {
            discard();
            return {};
        }
        if (!cb_ && owner_->split_copies_locked(pending_bytes_) && independent()) return submit_split();
        if (!cb_) open(owner_->lane_for_copies_locked(pending_bytes_));
        const std::uint64_t value = owner_->submit_locked(end_cb(), std::move(sets_), lane_);
        return finish(value);
    }

private:
    friend class vulkan_backend;

    // Ends the open command buffer behind a barrier to host reads (device writes of this
    // submission become visible to host reads after its fence); returns it, cb_ is empty.
    vk::CommandBuffer end_cb() {
        const auto& d = ctx_->dispatcher();
        vk::MemoryBarrier mb;
        mb.srcAccessMask = lane_ == detail::vk_lane::transfer
                               ? vk::AccessFlags(vk::AccessFlagBits::eTransferWrite)
                               : vk::AccessFlagBits::eShaderWrite | vk::AccessFlagBits::eTransferWrite;
        mb.dstAccessMask = vk::AccessFlagBits::eHostRead;
        cb_.pipelineBarrier(device_stages(), vk::PipelineStageFlagBits::eHost, vk::DependencyFlags{}, 1, &mb, 0,
                            nullptr, 0, nullptr, d);
        detail::vk_check(static_cast<vk::Result>(d.vkEndCommandBuffer(static_cast<VkCommandBuffer>(cb_))),
                         "vkEndCommandBuffer");
        return std::exchange(cb_, {});
    }

    // The batch is submitted as `value`: releases the lock, the batch is empty.
    detail::timeline_fence<vulkan_backend> finish(std::uint64_t value) {
        sets_.clear();
        lock_.unlock();
        owner_ = nullptr;
        commands_ = 0;
        lane_ = detail::vk_lane::compute;
        pending_bytes_ = 0;
        run_.clear();
        barrier_due_ = true;
        return {value};
    }

    // True when no kept copy touches what another one writes: they may run in any order, on two
    // queues at once.
    [[nodiscard]] bool independent() {
        run_.clear();
        bool ok = true;
        for (const auto& c : pending_) {
            if (conflicts(c)) {
                ok = false;
                break;
            }
            run_.push_back({c.src, c.src_off, c.n, false});
            run_.push_back({c.dst, c.dst_off, c.n, true});
        }
        run_.clear();
        return ok;
    }

    // copy_queue::both: the kept copies split in two halves by bytes (a copy across the middle cut
    // in two), one recorded for each queue, submitted to run at the same time.
    detail::timeline_fence<vulkan_backend> submit_split() {
        std::vector<copy_cmd> all = std::move(pending_);
        std::vector<copy_cmd> second;
        pending_.clear();
        const std::uint64_t half = pending_bytes_ / 2;
        std::uint64_t taken = 0;
        for (const auto& c : all) {
            if (taken >= half) {
                second.push_back(c);
                continue;
            }
            const std::uint64_t first = std::min(c.n, half - taken);
            pending_.push_back({c.src, c.src_off, c.dst, c.dst_off, first});
            if (first < c.n) second.push_back({c.src, c.src_off + first, c.dst, c.dst_off + first, c.n - first});
            taken += first;
        }
        open(detail::vk_lane::compute);  // records the first half
        const vk::CommandBuffer ccb = end_cb();
        pending_ = std::move(second);
        vk::CommandBuffer tcb;
#if UNIBUF_EXCEPTIONS
        try {
            open(detail::vk_lane::transfer);
            tcb = end_cb();
        } catch (...) {
            cb_ = ccb;  // discarded with the batch (a transfer buffer that failed to begin stays in its pool)
            lane_ = detail::vk_lane::compute;
            throw;
        }
#else
        open(detail::vk_lane::transfer);
        tcb = end_cb();
#endif
        return finish(owner_->submit_split_locked(ccb, tcb));
    }

    vulkan_batch(const vulkan_context& ctx, detail::vk_timeline& owner, std::unique_lock<std::mutex> lock)
        : ctx_(&ctx), owner_(&owner), lock_(std::move(lock)) {}

    // Throws invalid_argument when the batch is empty (moved from or submitted).
    void require_open(const char* what) const {
        if (owner_ == nullptr)
            throw_error(errc::invalid_argument, std::string("unibuf: vulkan: batch::") + what +
                                                    " on an empty batch (moved from, submitted or discarded); "
                                                    "start another with begin()");
    }

    // One copy not recorded yet: a batch of copies only learns its queue at submit().
    struct copy_cmd {
        vk::Buffer src;
        std::uint64_t src_off = 0;
        vk::Buffer dst;
        std::uint64_t dst_off = 0;
        std::uint64_t n = 0;
    };
    // Bytes a copy since the last barrier read or wrote.
    struct touched {
        vk::Buffer buffer;
        std::uint64_t off = 0;
        std::uint64_t n = 0;
        bool write = false;
    };

    // The stages the lane's commands run in (a transfer queue has no compute stage).
    [[nodiscard]] vk::PipelineStageFlags device_stages() const noexcept {
        if (lane_ == detail::vk_lane::transfer) return vk::PipelineStageFlagBits::eTransfer;
        return vk::PipelineStageFlagBits::eComputeShader | vk::PipelineStageFlagBits::eTransfer;
    }

    // Begins the command buffer of `lane` and records the copies kept so far.
    void open(detail::vk_lane lane) {
        lane_ = lane;
        cb_ = owner_->acquire_cb_locked(lane);
        vk::CommandBufferBeginInfo bi;
        bi.flags = vk::CommandBufferUsageFlagBits::eOneTimeSubmit;
        detail::vk_check(cb_.begin(&bi, ctx_->dispatcher()), "vkBeginCommandBuffer");
        barrier_due_ = true;
        for (const auto& c : pending_) record_copy(c);
        pending_.clear();
    }

    // A copy: recorded now once the command buffer is open (after a dispatch), else kept.
    void add_copy(vk::Buffer src, std::uint64_t src_off, vk::Buffer dst, std::uint64_t dst_off, std::uint64_t n) {
        ++commands_;
        const copy_cmd c{src, src_off, dst, dst_off, n};
        if (cb_) {
            record_copy(c);
            return;
        }
        pending_.push_back(c);
        pending_bytes_ = n > ~std::uint64_t{0} - pending_bytes_ ? ~std::uint64_t{0} : pending_bytes_ + n;
    }

    // Earlier commands (this batch and earlier submissions) wrote with shaders or transfers; the
    // next command may read or write the same bytes with either.
    void barrier() {
        vk::MemoryBarrier mb;
        if (lane_ == detail::vk_lane::transfer) {
            mb.srcAccessMask = vk::AccessFlagBits::eTransferWrite;
            mb.dstAccessMask = vk::AccessFlagBits::eTransferRead | vk::AccessFlagBits::eTransferWrite;
        } else {
            mb.srcAccessMask = vk::AccessFlagBits::eShaderWrite | vk::AccessFlagBits::eTransferWrite;
            mb.dstAccessMask = vk::AccessFlagBits::eShaderRead | vk::AccessFlagBits::eShaderWrite |
                               vk::AccessFlagBits::eTransferRead | vk::AccessFlagBits::eTransferWrite;
        }
        cb_.pipelineBarrier(device_stages(), device_stages(), vk::DependencyFlags{}, 1, &mb, 0, nullptr, 0, nullptr,
                            ctx_->dispatcher());
        run_.clear();
        barrier_due_ = false;
    }

    // True when a copy reading `src` and writing `dst` touches bytes a copy since the last barrier
    // wrote, or writes bytes one read: it must wait for them.
    [[nodiscard]] bool conflicts(const copy_cmd& c) const noexcept {
        const auto overlap = [](const touched& t, vk::Buffer b, std::uint64_t off, std::uint64_t n) {
            return t.buffer == b && off < t.off + t.n && t.off < off + n;
        };
        for (const auto& t : run_) {
            if (t.write && overlap(t, c.src, c.src_off, c.n)) return true;
            if (overlap(t, c.dst, c.dst_off, c.n)) return true;
        }
        return false;
    }

    // Records one buffer-to-buffer copy region, behind a barrier where it must wait.
    void record_copy(const copy_cmd& c) {
        if (barrier_due_ || conflicts(c)) barrier();
        run_.push_back({c.src, c.src_off, c.n, false});
        run_.push_back({c.dst, c.dst_off, c.n, true});
        record_region(c.src, c.src_off, c.dst, c.dst_off, c.n);
    }

    void record_region(vk::Buffer src, std::uint64_t src_off, vk::Buffer dst, std::uint64_t dst_off, std::uint64_t n) {
        vk::BufferCopy region;
        region.srcOffset = src_off;
        region.dstOffset = dst_off;
        region.size = n;
        cb_.copyBuffer(src, dst, 1, &region, ctx_->dispatcher());
    }

    // ---- dispatch, in steps: check the call, check each binding, record ----------------------

    // The open batch, the kernel, its binding count and push size, and non-zero group counts.
    void check_dispatch(const vulkan_kernel& k, dispatch_size groups, std::size_t bindings,
                        std::size_t push_bytes) const {
        require_open("dispatch");
        if (!k.pipeline())
            throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch of an empty (moved-from) kernel");
        if (bindings != k.bindings())
            throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch binds " + std::to_string(bindings) +
                                                    " buffers; the kernel has " + std::to_string(k.bindings()) +
                                                    " bindings");
        if (push_bytes != k.push_constant_bytes())
            throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch pushes " + std::to_string(push_bytes) +
                                                    " bytes; the kernel's push-constant block is " +
                                                    std::to_string(k.push_constant_bytes()) + " bytes");
        const std::uint32_t g[3] = {groups.x, groups.y, groups.z};
        for (int i = 0; i < 3; ++i)
            if (g[i] == 0)
                throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch of 0 groups in dimension " +
                                                        std::to_string(i) + "; each dimension needs at least 1");
    }

    // Binding `i`: `size` bytes at `off` of `a`, inside it, aligned and sized as the device allows.
    [[nodiscard]] vk::DescriptorBufferInfo binding_info(std::size_t i, const vulkan_allocation* a, std::uint64_t off,
                                                        std::uint64_t size) const {
        const auto& caps = ctx_->capabilities();
        if (a == nullptr)
            throw_error(errc::invalid_argument, "unibuf: vulkan: dispatch binding " + std::to_string(i) + " is null");
        detail::vk_check_range(*a, off, size, "dispatch binding");
        if (size == 0 || off % caps.min_storage_offset_alignment != 0 || size > caps.max_storage_buffer_range)
            throw_error(errc::invalid_argument,
                        "unibuf: vulkan: dispatch binding " + std::to_string(i) + " at offset " + std::to_string(off) +
                            " of " + std::to_string(size) + " bytes; the device needs offsets aligned to " +
                            std::to_string(caps.min_storage_offset_alignment) + " and 1 to " +
                            std::to_string(caps.max_storage_buffer_range) + " bytes");
        vk::DescriptorBufferInfo info;
        info.buffer = a->buffer();
        info.offset = off;
        info.range = size;
        return info;
    }

    // Records the checked dispatch: descriptor set, pipeline, push constants, the group counts.
    void record_dispatch(const vulkan_kernel& k, dispatch_size groups, std::span<const vk::DescriptorBufferInfo> infos,
                         std::span<const std::byte> push) {
        if (!cb_) open(detail::vk_lane::compute);
        barrier();
        ++commands_;
        barrier_due_ = true;  // the next command waits for this dispatch
        const auto& d = ctx_->dispatcher();
        vk::DescriptorSet set;
        if (!infos.empty()) {
            auto ps = owner_->allocate_set_locked(k.set_layout(), k.bindings());
            sets_.push_back(ps);
            set = ps.second;
            std::vector<vk::WriteDescriptorSet> writes(infos.size());
            for (std::size_t i = 0; i < infos.size(); ++i) {
                writes[i].dstSet = set;
                writes[i].dstBinding = static_cast<std::uint32_t>(i);
                writes[i].descriptorCount = 1;
                writes[i].descriptorType = vk::DescriptorType::eStorageBuffer;
                writes[i].pBufferInfo = &infos[i];
            }
            ctx_->device().updateDescriptorSets(static_cast<std::uint32_t>(writes.size()), writes.data(), 0, nullptr, d);
        }
        cb_.bindPipeline(vk::PipelineBindPoint::eCompute, k.pipeline(), d);
        if (set) cb_.bindDescriptorSets(vk::PipelineBindPoint::eCompute, k.pipeline_layout(), 0, 1, &set, 0, nullptr, d);
        if (!push.empty())
            cb_.pushConstants(k.pipeline_layout(), vk::ShaderStageFlagBits::eCompute, 0,
                              static_cast<std::uint32_t>(push.size()), push.data(), d);
        record_groups(groups);
    }

    // Group counts above maxComputeWorkGroupCount (65535 on many devices) run as several
    // vkCmdDispatchBase calls; gl_WorkGroupID / gl_GlobalInvocationID include the base. The bases
    // count in 64 bits: a 32-bit base + limit would wrap for counts near 2^32 (limits of 2^31 - 1).
    void record_groups(dispatch_size groups) {
        const auto& caps = ctx_->capabilities();
        const auto& d = ctx_->dispatcher();
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

    void discard() noexcept {
        if (owner_ == nullptr) return;
        owner_->discard_locked(cb_, sets_, lane_);
        cb_ = vk::CommandBuffer{};
        if (lock_.owns_lock()) lock_.unlock();
        owner_ = nullptr;
        commands_ = 0;
        lane_ = detail::vk_lane::compute;
        pending_.clear();
        pending_bytes_ = 0;
        run_.clear();
        barrier_due_ = true;
    }

    const vulkan_context* ctx_;
    detail::vk_timeline* owner_;
    std::unique_lock<std::mutex> lock_;
    vk::CommandBuffer cb_;
    detail::vk_descriptor_sets sets_;
    std::size_t commands_ = 0;
    detail::vk_lane lane_ = detail::vk_lane::compute;  // the queue of cb_ (once open)
    std::vector<copy_cmd> pending_;                     // copies kept until the queue is known
    std::uint64_t pending_bytes_ = 0;
    std::vector<touched> run_;                          // what copies since the last barrier touched
    bool barrier_due_ = true;                           // the next command needs a barrier
};

} // namespace unibuf
