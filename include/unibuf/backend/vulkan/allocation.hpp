/// @file allocation.hpp
/// @brief Allocations of the Vulkan backend: `vulkan_allocation` (a buffer with its own memory,
/// persistently mapped when zero-copy; a device buffer plus a mapped staging buffer when staged)
/// and `detail::vk_allocator`, which makes them: it probes the buffer's memory types, asks
/// `select_memory` (backend/vulkan/memory_selection.hpp) and chooses again without a heap the
/// driver refused, maps, keeps the per-heap byte count and the budget, flushes and invalidates
/// mapped ranges rounded to the non-coherent atom.
///
/// Part of `vulkan_backend` (include backend/vulkan/vulkan_backend.hpp, which names this type
/// `vulkan_backend::allocation`).
#pragma once

#include "../../core/detail/meta.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"
#include "../detail/range_check.hpp"
#include "../fault_injection.hpp"
#include "context.hpp"
#include "memory_selection.hpp"
#include "timeline.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace unibuf {

namespace detail {
class vk_allocator;
}

/// @brief One buffer allocation of `vulkan_backend` (its `allocation`): a VkBuffer with its own
/// VkDeviceMemory, persistently mapped when zero-copy; a device buffer plus a mapped staging
/// buffer when staged. Move-only; freed when no submitted work may use it any more.
///
/// An empty (default-constructed, moved-from or failed) allocation holds no memory: `host_data()`
/// is null, `size()` 0, and every backend call given it throws `errc::invalid_argument`.
class vulkan_allocation {
public:
    /// @brief An empty allocation.
    vulkan_allocation() = default;
    /// @brief Takes over `o`'s memory; `o` is empty afterwards.
    vulkan_allocation(vulkan_allocation&& o) noexcept { steal(o); }
    /// @brief Frees this allocation's memory (deferred while work uses it), then takes over `o`'s.
    vulkan_allocation& operator=(vulkan_allocation&& o) noexcept {
        if (this != &o) {
            release();
            steal(o);
        }
        return *this;
    }
    vulkan_allocation(const vulkan_allocation&) = delete;
    vulkan_allocation& operator=(const vulkan_allocation&) = delete;
    /// @brief Frees the memory, deferred until submitted work that may use it has completed.
    ~vulkan_allocation() { release(); }

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
    /// @brief Memory type of the device copy (the mapped memory when zero-copy).
    [[nodiscard]] int memory_type() const noexcept { return device_.type; }
    /// @brief Memory type of the staging buffer (-1 when zero-copy).
    [[nodiscard]] int staging_memory_type() const noexcept { return staging_.type; }
    /// @brief True when the allocation holds memory.
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(device_.buffer); }

private:
    friend class detail::vk_allocator;
    struct part {
        vk::Buffer buffer;
        vk::DeviceMemory memory;
        std::uint64_t bytes = 0;  ///< allocationSize
        std::uint32_t heap = 0;
        int type = -1;
    };
    void steal(vulkan_allocation& o) noexcept {
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

    detail::vk_allocator* owner_ = nullptr;
    part device_;
    part staging_;
    std::byte* host_ = nullptr;
    std::uint64_t size_ = 0;
    bool host_coherent_ = true;
    allocation_report report_;
};

namespace detail {

/// Throws unless `[off, off + n)` lies inside `a` (`errc::invalid_argument` for an empty
/// allocation, `errc::out_of_range` otherwise), naming the operation `what`.
inline void vk_check_range(const vulkan_allocation& a, std::uint64_t off, std::uint64_t n, const char* what) {
    check_allocation_range("vulkan", what, static_cast<bool>(a), a.size(), off, n);
}

/// What a `vk_allocator` is told at creation (from `vulkan_backend::options`).
struct vk_allocator_settings {
    vulkan::selection_thresholds thresholds{};
    double budget_fraction = vulkan::heap_budget::default_fraction;
    std::uint64_t heap_limit = 0;  ///< most bytes from one heap (0: the budget only)
    std::shared_ptr<fault_injector> faults;  ///< vulkan_backend::options::faults (null: none)
};

/// Makes, maps and frees the allocations of one `vulkan_backend`, keeping the bytes it took from
/// each heap. Thread-safe (one mutex over the budget and the allocations it decides).
class vk_allocator {
public:
    /// An allocator for the device of `ctx` whose freed memory waits on `retire_to`.
    vk_allocator(const vulkan_context& ctx, vk_timeline& retire_to, const vk_allocator_settings& s)
        : ctx_(&ctx), timeline_(&retire_to), settings_(s), heap_used_(ctx.capabilities().memory.heaps.size(), 0) {}
    vk_allocator(const vk_allocator&) = delete;
    vk_allocator& operator=(const vk_allocator&) = delete;

    /// Bytes taken from heap `heap` (device and staging memory).
    [[nodiscard]] std::uint64_t bytes_in_use(std::size_t heap) const {
        std::lock_guard lk(m_);
        return heap < heap_used_.size() ? heap_used_[heap] : 0;
    }

    /// Bytes each heap can still take.
    [[nodiscard]] vulkan::heap_budget budget() const {
        std::lock_guard lk(m_);
        return budget_locked();
    }

    /// The decision `allocate(req)` would make now.
    [[nodiscard]] vulkan::memory_decision decide(const memory_request& req) const {
        return vulkan::select_memory(req, caps().memory, budget(), settings_.thresholds);
    }

    /// Allocates for `req`; an empty allocation, `ec` and `why` set on failure (nothing leaked).
    vulkan_allocation allocate(const memory_request& req, std::error_code& ec, std::string& why) {
        ec.clear();
        auto fail = [&](errc e, std::string msg) {
            ec = e;
            why = std::move(msg);
            return vulkan_allocation{};
        };
        if (req.size_bytes > caps().max_allocation_size)
            return fail(errc::out_of_memory, "unibuf: vulkan: asked for " + std::to_string(req.size_bytes) +
                                                 " bytes; the device's largest single allocation "
                                                 "(maxMemoryAllocationSize) is " +
                                                 std::to_string(caps().max_allocation_size) + " bytes");
        std::lock_guard lk(m_);  // budget checks and allocations as one step
        vulkan_allocation a;
        a.owner_ = this;
        a.size_ = req.size_bytes;
        std::uint32_t allowed = ~0u;
        if (const vk::Result r = probe_device_buffer(a, allowed); r != vk::Result::eSuccess)
            return fail(vk_errc(r), "unibuf: vulkan: vkCreateBuffer of " + std::to_string(req.size_bytes) +
                                        " bytes failed: " + vk_result_name(r));
        vulkan::heap_budget budget = budget_locked();
        std::vector<std::string> refused;  // heaps the driver refused although the budget had room
        for (std::size_t attempt = 0;; ++attempt) {
            vulkan::memory_decision dec = vulkan::select_memory(req, caps().memory, budget, settings_.thresholds, allowed);
            if (!dec) {
                abandon_locked(a);
                std::string msg = dec.message;
                for (const auto& f : refused) msg += "; earlier: " + f;
                return fail(static_cast<errc>(dec.error.value()), msg);
            }
            int failed_type = -1;
            std::string injected;  // an injected failure's message (options::faults)
            const vk::Result r = back_with_memory(a, dec, failed_type, injected);
            if (r == vk::Result::eSuccess) {
                a.report_ = std::move(dec.report);
                for (auto& f : refused) a.report_.fallbacks.push_back(std::move(f));
                if (const vk::Result m = map_and_count_locked(a, injected); m != vk::Result::eSuccess) {
                    const int type = a.host_part().type;
                    release_memory_locked(a);
                    a.owner_ = nullptr;
                    if (!injected.empty()) return fail(errc::mapping_failed, injected);
                    return fail(errc::mapping_failed, "unibuf: vulkan: vkMapMemory of " + std::to_string(req.size_bytes) +
                                                          " bytes (memory type " + std::to_string(type) +
                                                          ") failed: " + vk_result_name(m));
                }
                return a;
            }
            refused.push_back(exclude_refused_heap(a, budget, failed_type, r));
            if (!injected.empty()) {  // an injected vkAllocateMemory failure: no second choice
                abandon_locked(a);
                return fail(errc::out_of_memory, injected);
            }
            if (attempt > caps().memory.heaps.size()) {
                abandon_locked(a);
                return fail(errc::out_of_memory, "unibuf: vulkan: out of memory: asked for " +
                                                     std::to_string(req.size_bytes) + " bytes; " + refused.back());
            }
        }
    }

    /// Frees `a`'s memory once no submitted work may use it (called by `vulkan_allocation`).
    void retire(vulkan_allocation& a) noexcept {
        {
            std::lock_guard lk(m_);
            if (a.device_.memory) heap_used_[a.device_.heap] -= std::min(heap_used_[a.device_.heap], a.device_.bytes);
            if (a.staging_.memory) heap_used_[a.staging_.heap] -= std::min(heap_used_[a.staging_.heap], a.staging_.bytes);
        }
        vk_retired g;
        const auto device = std::exchange(a.device_, vulkan_allocation::part{});
        const auto staging = std::exchange(a.staging_, vulkan_allocation::part{});
        g.device = {device.buffer, device.memory};
        g.staging = {staging.buffer, staging.memory};
        a.host_ = nullptr;
        timeline_->bury(g);
    }

    /// Makes host writes in `[off, off + n)` of a non-coherent mapping visible to the device
    /// (vkFlushMappedMemoryRanges over the atom-rounded range).
    static void flush_mapped(const vulkan_context& ctx, const vulkan_allocation& a, std::uint64_t off, std::uint64_t n) {
        if (n == 0) return;
        const auto r = mapped_range(ctx, a, off, n);
        vk_check(ctx.device().flushMappedMemoryRanges(1, &r, ctx.dispatcher()), "vkFlushMappedMemoryRanges");
    }

    /// Makes device writes in `[off, off + n)` visible to the host through a non-coherent mapping
    /// (vkInvalidateMappedMemoryRanges over the atom-rounded range).
    static void invalidate_mapped(const vulkan_context& ctx, const vulkan_allocation& a, std::uint64_t off,
                                  std::uint64_t n) {
        if (n == 0) return;
        const auto r = mapped_range(ctx, a, off, n);
        vk_check(ctx.device().invalidateMappedMemoryRanges(1, &r, ctx.dispatcher()), "vkInvalidateMappedMemoryRanges");
    }

private:
    using part = vulkan_allocation::part;

    [[nodiscard]] const vk::DispatchLoaderDynamic& d() const noexcept { return ctx_->dispatcher(); }
    [[nodiscard]] vk::Device dev() const noexcept { return ctx_->device(); }
    [[nodiscard]] const vulkan_capabilities& caps() const noexcept { return ctx_->capabilities(); }

    // The atom-rounded, allocation-clamped range of the host mapping.
    [[nodiscard]] static vk::MappedMemoryRange mapped_range(const vulkan_context& ctx, const vulkan_allocation& a,
                                                            std::uint64_t off, std::uint64_t n) {
        const part& p = a.host_part();
        const auto ar = vulkan::round_to_atom(off, n, ctx.capabilities().non_coherent_atom, p.bytes);
        vk::MappedMemoryRange r;
        r.memory = p.memory;
        r.offset = ar.offset;
        r.size = ar.size;
        return r;
    }

    [[nodiscard]] vulkan::heap_budget budget_locked() const {
        vulkan::heap_budget b = ctx_->budget(heap_used_, settings_.budget_fraction);
        if (settings_.heap_limit == 0) return b;
        const auto& heaps = caps().memory.heaps;
        b.available.resize(heaps.size(), 0);
        for (std::size_t i = 0; i < heaps.size(); ++i) {
            const std::uint64_t left = settings_.heap_limit > heap_used_[i] ? settings_.heap_limit - heap_used_[i] : 0;
            b.available[i] = std::min(b.available[i], left);
        }
        b.source += "; capped at options::heap_limit = " + std::to_string(settings_.heap_limit) + " bytes per heap";
        return b;
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
        // With a transfer queue of another family, buffers are used by both families: concurrent
        // sharing instead of an ownership transfer (release + acquire barriers) per buffer and queue
        // change, which would need every submission to know each buffer's owner.
        const std::uint32_t families[2] = {ctx_->queue_family(), ctx_->transfer_queue_family()};
        if (ctx_->transfer_queue() && families[0] != families[1]) {
            bci.sharingMode = vk::SharingMode::eConcurrent;
            bci.queueFamilyIndexCount = 2;
            bci.pQueueFamilyIndices = families;
        } else {
            bci.sharingMode = vk::SharingMode::eExclusive;
        }
        return dev().createBuffer(&bci, nullptr, &out, d());
    }

    // Step 1: creates the buffer the device will use (kept as `a`'s device buffer) and reads the
    // memory types that may back it. Nothing to probe for 0 bytes (select_memory refuses them).
    vk::Result probe_device_buffer(vulkan_allocation& a, std::uint32_t& allowed) const {
        if (a.size_ == 0) return vk::Result::eSuccess;
        vk::Buffer probe;
        const vk::Result r = create_buffer(a.size_, device_usage(), probe);
        if (r != vk::Result::eSuccess) return r;
        vk::MemoryRequirements mr;
        dev().getBufferMemoryRequirements(probe, &mr, d());
        allowed = mr.memoryTypeBits;
        a.device_.buffer = probe;
        return vk::Result::eSuccess;
    }

    // Step 2: memory of the decided types for the device buffer and, when staged, the staging
    // buffer (created here). On failure `failed_type` is the type the driver refused.
    // `injected` receives the message of a failure injected by settings_.faults.
    vk::Result back_with_memory(vulkan_allocation& a, const vulkan::memory_decision& dec, int& failed_type,
                                std::string& injected) {
        failed_type = dec.device_type;
        vk::Result r = allocate_part(a.device_, dec.device_type, !dec.staged, injected);
        if (r != vk::Result::eSuccess || !dec.staged) return r;
        failed_type = dec.staging_type;
        if (!a.staging_.buffer) r = create_buffer(a.size_, staging_usage(), a.staging_.buffer);
        if (r == vk::Result::eSuccess) r = allocate_part(a.staging_, dec.staging_type, true, injected);
        return r;
    }

    // Step 3: maps the host part persistently and counts the bytes against their heaps.
    vk::Result map_and_count_locked(vulkan_allocation& a, std::string& injected) {
        a.host_coherent_ = a.report_.host_coherent;
        injected = fault_injector::failure(settings_.faults.get(), "vulkan", fault_point::map, [&] {
            return "vkMapMemory of " + std::to_string(a.size_) + " bytes, memory type " +
                   std::to_string(a.host_part().type) + ", as VK_ERROR_MEMORY_MAP_FAILED";
        });
        if (!injected.empty()) return vk::Result::eErrorMemoryMapFailed;
        void* ptr = nullptr;
        const vk::Result r = dev().mapMemory(a.host_part().memory, 0, VK_WHOLE_SIZE, vk::MemoryMapFlags{}, &ptr, d());
        a.host_ = static_cast<std::byte*>(ptr);
        if (r != vk::Result::eSuccess) return r;
        heap_used_[a.device_.heap] += a.device_.bytes;
        if (a.staging_.buffer) heap_used_[a.staging_.heap] += a.staging_.bytes;
        return vk::Result::eSuccess;
    }

    // The driver refused memory of `failed_type` although the budget said yes: frees what step 2
    // made, marks that heap full in `budget` so that the next decision avoids it, and says so.
    std::string exclude_refused_heap(vulkan_allocation& a, vulkan::heap_budget& budget, int failed_type, vk::Result r) {
        const auto& mem = caps().memory;
        const auto heap = mem.types[static_cast<std::size_t>(failed_type)].heap;
        std::string note = "vkAllocateMemory of " + std::to_string(a.size_) + " bytes from memory type " +
                           std::to_string(failed_type) + " (heap " + std::to_string(heap) + ") failed with " +
                           vk_result_name(r) + "; chose again without that heap";
        free_memory_now(a.device_);
        free_memory_now(a.staging_);
        if (a.staging_.buffer) dev().destroyBuffer(a.staging_.buffer, nullptr, d());
        a.staging_ = {};
        if (budget.available.size() < mem.heaps.size()) budget.available.resize(mem.heaps.size(), 0);
        budget.available[heap] = 0;
        return note;
    }

    // Allocates and binds memory of `type` for `p.buffer`; mapped memory is sized to a multiple of
    // the non-coherent atom so that rounded flush ranges stay inside it.
    vk::Result allocate_part(part& p, int type, bool mappable, std::string& injected) {
        vk::MemoryRequirements mr;
        dev().getBufferMemoryRequirements(p.buffer, &mr, d());
        std::uint64_t bytes = mr.size;
        const bool host_visible = (caps().memory.types[static_cast<std::size_t>(type)].flags &
                                   vulkan::memory_property::host_visible) != 0;
        if (mappable && host_visible) {
            const std::uint64_t atom = std::max<std::uint64_t>(1, caps().non_coherent_atom);
            if (!checked_align_up(mr.size, atom, bytes)) return vk::Result::eErrorOutOfDeviceMemory;
        }
        injected = fault_injector::failure(settings_.faults.get(), "vulkan", fault_point::allocate, [&] {
            return "vkAllocateMemory of " + std::to_string(bytes) + " bytes, memory type " + std::to_string(type) +
                   ", as VK_ERROR_OUT_OF_DEVICE_MEMORY";
        });
        if (!injected.empty()) {
            p.memory = vk::DeviceMemory{};
            return vk::Result::eErrorOutOfDeviceMemory;
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
        p.heap = caps().memory.types[static_cast<std::size_t>(type)].heap;
        return vk::Result::eSuccess;
    }

    void free_memory_now(part& p) const noexcept {
        if (p.memory) dev().freeMemory(p.memory, nullptr, d());
        p.memory = vk::DeviceMemory{};
        p.bytes = 0;
        p.type = -1;
    }
    void destroy_part_now(part& p) const noexcept {
        free_memory_now(p);
        if (p.buffer) dev().destroyBuffer(p.buffer, nullptr, d());
        p.buffer = vk::Buffer{};
    }
    void release_memory_locked(vulkan_allocation& a) noexcept {
        destroy_part_now(a.device_);
        destroy_part_now(a.staging_);
        a.host_ = nullptr;
    }
    // A failed allocation: its probe buffer goes, and it no longer points here (m_ is held, so
    // its destructor must not retire through this allocator).
    void abandon_locked(vulkan_allocation& a) noexcept {
        destroy_part_now(a.device_);
        a.owner_ = nullptr;
    }

    const vulkan_context* ctx_;
    vk_timeline* timeline_;
    vk_allocator_settings settings_;
    mutable std::mutex m_;  // heap_used_, allocation decisions
    std::vector<std::uint64_t> heap_used_;
};

} // namespace detail

inline void vulkan_allocation::release() noexcept {
    if (owner_ != nullptr && (device_.buffer || staging_.buffer)) owner_->retire(*this);
    owner_ = nullptr;
    host_ = nullptr;
}

} // namespace unibuf
