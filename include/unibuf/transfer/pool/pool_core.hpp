/// @file pool_core.hpp
/// @brief The shared state behind a `buffer_pool` (`detail::pool_core`): its blocks and their
/// TLSF range allocators, the batch regions, growth, release of slices and the counters. The
/// public class (buffer_pool.hpp) is a handle to one core; the core outlives it while buffers or
/// batches are alive. Not part of the API.
#pragma once

#include "pool_config.hpp"
#include "../block_allocator.hpp"
#include "../../core/detail/meta.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace unibuf {

namespace detail {

inline constexpr std::uint64_t cache_line = 64;

// Every byte count derived from a caller's count goes through checked arithmetic
// (detail::checked_mul / checked_add of core/detail/meta.hpp, and these two for the pool's power-of-two granules).
// `out = v` rounded up to a multiple of `a` (a power of two: a mask, no division on the hot path);
// false (and `out` untouched) when that does not fit 64 bits.
[[nodiscard]] constexpr bool pool_round_up(std::uint64_t v, std::uint64_t a, std::uint64_t& out) noexcept {
    std::uint64_t t = 0;
    if (!checked_add(v, a - 1, t)) return false;
    out = t & ~(a - 1);
    return true;
}
// Bytes a request of `bytes` at alignment `align` (>= gran, both powers of two) needs in a block
// that is new to it: its rounded size plus the worst-case leading padding.
[[nodiscard]] constexpr bool pool_need(std::uint64_t bytes, std::uint64_t align, std::uint64_t gran,
                                       std::uint64_t& out) noexcept {
    std::uint64_t rounded = 0;
    return pool_round_up(bytes, gran, rounded) && checked_add(rounded, align > gran ? align - gran : 0, out);
}

// The pool's shared state. It outlives the pool object while buffers or batches are alive.
//
// Slice handles: bit 63 clear: (block index << 32) | range id of a direct slice;
// bit 63 set: index of the batch region the slice was bumped from.
template <class B, class Locking>
class pool_core {
public:
    using allocation_type = typename B::allocation;
    static constexpr std::uint64_t region_bit = std::uint64_t{1} << 63;
    static constexpr std::uint32_t no_region = ~std::uint32_t{0};

    struct block {
        allocation_type memory;  // destroyed after `ranges`: declared first
        block_allocator ranges;
        bool grown;
        block(allocation_type&& m, std::uint64_t bytes, std::uint64_t gran, std::size_t reserve, bool g)
            : memory(std::move(m)), ranges(bytes, gran, reserve), grown(g) {}
    };

    // One open or draining batch: a range of the pool that its buffers are bumped from.
    struct region {
        std::size_t block = 0;
        std::uint32_t range = 0;
        std::uint64_t offset = 0, size = 0, bump = 0;
        std::size_t live = 0;
        bool open = false;
        std::uint32_t next_free = no_region;
    };

    // Bookkeeping is reserved up front for the configured blocks and batches, capped: beyond the
    // caps the vectors grow on demand, so a huge configured count cannot make the reservation fail.
    static constexpr std::size_t reserve_cap = 1024;

    pool_core(B& backend, const pool_config& cfg, const memory_request& req) : backend_(&backend), cfg_(cfg), request_(req) {
        blocks_.reserve(std::clamp<std::size_t>(cfg.max_blocks, 1, reserve_cap));
        regions_.reserve(std::min<std::size_t>(cfg.batch_count, reserve_cap) + 1);
    }

    // Allocates the first block. ec/why on failure.
    void init(std::uint64_t granularity, std::uint64_t bytes, std::uint64_t batch_bytes, bool non_coherent,
              std::error_code& ec, std::string& why) {
        gran_ = granularity;
        non_coherent_ = non_coherent;
        first_bytes_ = bytes;
        batch_bytes_ = batch_bytes;
        block_limit_ = std::min(block_allocator::max_capacity, backend_->limits().max_allocation_size);
        (void)add_block(bytes, false, ec, why);
        if (ec) why = "unibuf: buffer_pool: cannot allocate the pool's memory: " + why;
    }

    // A direct slice of `bytes` (`elements` of `element_size` bytes) at `align`; ec (and why, when
    // given) on failure.
    bool acquire(std::uint64_t bytes, std::uint64_t align, std::uint64_t elements, std::uint64_t element_size,
                 std::uint64_t& handle, allocation_type*& memory, std::uint64_t& offset, std::error_code& ec,
                 std::string* why) {
        std::lock_guard<Locking> g(lock_);
        std::size_t bi = 0;
        block_range r{};
        bool grew = false;
        if (!take_range(bytes, align, bi, r, grew, ec, why,
                        [&] { return "acquire " + describe(bytes, std::max(align, gran_), elements, element_size); }))
            return false;
        handle = (static_cast<std::uint64_t>(bi) << 32) | r.id;
        memory = &blocks_[bi]->memory;
        offset = r.offset;
        in_use_ += r.size;
        count_buffer(r.size, elements);
        if (!grew) ++avoided_;
        return true;
    }

    // Opens a batch region of `bytes` (0: the configured batch size).
    bool open_region(std::uint64_t bytes, std::uint32_t& id, std::error_code& ec, std::string* why) {
        std::lock_guard<Locking> g(lock_);
        if (bytes == 0) bytes = batch_bytes_;
        if (bytes == 0) {
            ec = errc::invalid_argument;
            if (why != nullptr)
                *why = "unibuf: buffer_pool: begin_batch() without a size, but the pool has no batch sizing "
                       "(pool_config::for_batches); pass the batch's bytes";
            return false;
        }
        std::size_t bi = 0;
        block_range r{};
        bool grew = false;
        if (!take_range(bytes, gran_, bi, r, grew, ec, why, [&] {
                return "begin a batch of " + std::to_string(bytes) + " bytes (" + std::to_string(regions_in_use_) +
                       " batches hold memory, " + std::to_string(open_regions_) + " of them not ended; the pool was "
                       "sized for " + std::to_string(cfg_.batch_count) + ")";
            }))
            return false;
        if (free_region_ != no_region) {
            id = free_region_;
            free_region_ = regions_[id].next_free;
        } else {
            regions_.emplace_back();
            id = static_cast<std::uint32_t>(regions_.size() - 1);
        }
        regions_[id] = region{bi, r.id, r.offset, r.size, 0, 0, true, no_region};
        ++open_regions_;
        ++regions_in_use_;
        in_use_ += r.size;
        peak_in_use_ = std::max(peak_in_use_, in_use_);
        if (!grew) ++avoided_;
        return true;
    }

    // A slice bumped from open region `id`.
    bool acquire_in(std::uint32_t id, std::uint64_t bytes, std::uint64_t align, std::uint64_t elements,
                    std::uint64_t element_size, std::uint64_t& handle, allocation_type*& memory,
                    std::uint64_t& offset, std::error_code& ec, std::string* why) {
        std::lock_guard<Locking> g(lock_);
        region& rg = regions_[id];
        align = std::max(align, gran_);
        // Region offsets lie inside a block (< 2^56) and the alignment is a type's: no wrap here.
        const std::uint64_t end = rg.offset + rg.size;
        const std::uint64_t at = round_up(rg.offset + rg.bump, align);
        const std::uint64_t room = at < end ? end - at : 0;
        // The request is compared before it is rounded: a byte count near 2^64 would wrap to 0.
        std::uint64_t size = 0;
        if (bytes > room || !detail::pool_round_up(bytes, gran_, size) || size > room) {
            ++failed_;
            ec = errc::capacity_exceeded;
            if (why != nullptr)
                *why = "unibuf: buffer_pool: cannot acquire " + describe(bytes, align, elements, element_size) +
                       " in a batch: " + std::to_string(rg.size - rg.bump) + " of the batch's " +
                       std::to_string(rg.size) + " bytes left (batch sizing: pool_config::batch_buffers, or "
                       "begin_batch(bytes))";
            return false;
        }
        rg.bump = at + size - rg.offset;
        ++rg.live;
        handle = region_bit | id;
        memory = &blocks_[rg.block]->memory;
        offset = at;
        count_buffer(size, elements);
        ++avoided_;
        return true;
    }

    // The batch owner is done: the region returns to the pool once its last buffer is released.
    static void close_region(pool_core* c, std::uint32_t id) noexcept {
        bool destroy = false;
        {
            std::lock_guard<Locking> g(c->lock_);
            region& rg = c->regions_[id];
            rg.open = false;
            --c->open_regions_;
            ++c->batches_;
            c->peak_batch_ = std::max(c->peak_batch_, rg.bump);
            if (rg.live == 0) c->free_region(id);
            destroy = c->orphaned_ && c->live_ == 0 && c->open_regions_ == 0;
        }
        if (destroy) delete c;
    }

    [[nodiscard]] std::uint64_t region_left(std::uint32_t id) const {
        std::lock_guard<Locking> g(lock_);
        return regions_[id].size - regions_[id].bump;
    }
    [[nodiscard]] std::uint64_t region_size(std::uint32_t id) const {
        std::lock_guard<Locking> g(lock_);
        return regions_[id].size;
    }

    // Release callback of every slice.
    static void release(void* ctx, std::uint64_t handle) noexcept {
        auto* c = static_cast<pool_core*>(ctx);
        bool destroy = false;
        {
            std::lock_guard<Locking> g(c->lock_);
            if ((handle & region_bit) != 0) {
                const auto id = static_cast<std::uint32_t>(handle & 0xffffffffu);
                region& rg = c->regions_[id];
                --rg.live;
                if (!rg.open && rg.live == 0) c->free_region(id);
            } else {
                block& b = *c->blocks_[static_cast<std::size_t>(handle >> 32)];
                const auto id = static_cast<std::uint32_t>(handle & 0xffffffffu);
                c->in_use_ -= b.ranges.size_of(id);
                b.ranges.release(id);
            }
            --c->live_;
            ++c->releases_;
            destroy = c->orphaned_ && c->live_ == 0 && c->open_regions_ == 0;
        }
        if (destroy) delete c;
    }

    // Release callback of a slice whose device work did not complete in its buffer's wait bound:
    // the buffer is gone, but its range stays taken (never handed out again) until the pool frees
    // the block with the pool; a batch region with such a slice is never recycled.
    static void abandon(void* ctx, std::uint64_t handle) noexcept {
        auto* c = static_cast<pool_core*>(ctx);
        bool destroy = false;
        {
            std::lock_guard<Locking> g(c->lock_);
            (void)handle;  // a region keeps this slice counted in its `live`, so it is never recycled
            --c->live_;
            ++c->abandoned_;
            destroy = c->orphaned_ && c->live_ == 0 && c->open_regions_ == 0;
        }
        if (destroy) delete c;
    }

    // The pool object goes away; the core follows when no buffer or batch is left.
    static void orphan(pool_core* c) noexcept {
        bool destroy = false;
        {
            std::lock_guard<Locking> g(c->lock_);
            c->orphaned_ = true;
            destroy = c->live_ == 0 && c->open_regions_ == 0;
        }
        if (destroy) delete c;
    }

    [[nodiscard]] bool can_fit(std::uint64_t bytes, std::uint64_t align) const {
        std::lock_guard<Locking> g(lock_);
        align = std::max(align, gran_);
        for (const auto& b : blocks_)
            if (b && b->ranges.can_allocate(bytes, align)) return true;
        return false;
    }

    [[nodiscard]] pool_stats stats() const {
        std::lock_guard<Locking> g(lock_);
        pool_stats s;
        std::uint64_t free_total = 0;
        for (const auto& b : blocks_) {
            if (!b) continue;
            ++s.blocks;
            s.capacity_bytes += b->ranges.capacity();
            s.free_ranges += b->ranges.free_blocks();
            s.largest_free = std::max(s.largest_free, b->ranges.largest_free());
            free_total += b->ranges.free_bytes();
        }
        s.fragmentation = free_total == 0 ? 0.0 : 1.0 - static_cast<double>(s.largest_free) / static_cast<double>(free_total);
        s.bytes_in_use = in_use_;
        s.peak_bytes_in_use = peak_in_use_;
        s.live_buffers = live_;
        s.peak_live_buffers = peak_live_;
        s.acquires = acquires_;
        s.releases = releases_;
        s.abandoned = abandoned_;
        s.failed_acquires = failed_;
        s.elements = elements_;
        s.largest_buffer_bytes = largest_bytes_;
        s.largest_buffer_elements = largest_elements_;
        s.open_batches = open_regions_;
        s.batches = batches_;
        s.batch_bytes = batch_bytes_;
        s.peak_batch_bytes = peak_batch_;
        s.allocations_avoided = avoided_;
        s.backend_allocations = backend_allocs_;
        return s;
    }

    void reset_stats() {
        std::lock_guard<Locking> g(lock_);
        peak_in_use_ = in_use_;
        peak_live_ = live_;
        acquires_ = releases_ = failed_ = elements_ = 0;
        largest_bytes_ = largest_elements_ = 0;
        batches_ = peak_batch_ = 0;
        avoided_ = backend_allocs_ = 0;
    }

    std::uint64_t trim() {
        std::lock_guard<Locking> g(lock_);
        std::uint64_t freed = 0;
        for (auto& b : blocks_) {
            if (b && b->grown && b->ranges.live_ranges() == 0) {
                freed += b->ranges.capacity();
                b.reset();
            }
        }
        return freed;
    }

    [[nodiscard]] B& backend() const noexcept { return *backend_; }
    [[nodiscard]] const pool_config& config() const noexcept { return cfg_; }
    [[nodiscard]] std::uint64_t granularity() const noexcept { return gran_; }
    [[nodiscard]] const allocation_report& report() const noexcept { return blocks_.front()->memory.report(); }

    static std::uint64_t round_up(std::uint64_t v, std::uint64_t a) noexcept { return (v + a - 1) & ~(a - 1); }

private:
    std::size_t block_count() const noexcept {
        std::size_t n = 0;
        for (const auto& b : blocks_) n += b ? 1 : 0;
        return n;
    }

    void count_buffer(std::uint64_t size, std::uint64_t elements) noexcept {
        peak_in_use_ = std::max(peak_in_use_, in_use_);
        ++live_;
        peak_live_ = std::max(peak_live_, live_);
        ++acquires_;
        elements_ += elements;
        largest_bytes_ = std::max(largest_bytes_, size);
        largest_elements_ = std::max(largest_elements_, elements);
    }

    void free_region(std::uint32_t id) noexcept {
        region& rg = regions_[id];
        in_use_ -= rg.size;
        --regions_in_use_;
        blocks_[rg.block]->ranges.release(rg.range);
        rg.next_free = free_region_;
        free_region_ = id;
    }

    // Under the lock: a range from the blocks, growing the pool when allowed. `what()` names the
    // request in messages (called only when `why` is given: the hot path builds no strings).
    template <class What>
    bool take_range(std::uint64_t bytes, std::uint64_t align, std::size_t& bi, block_range& out, bool& grew,
                    std::error_code& ec, std::string* why, What&& what) {
        align = std::max(align, gran_);
        block_result last{};
        if (take_from_blocks(bytes, align, bi, out, last)) return true;
        if (cfg_.growth == pool_growth::add_blocks && block_count() < std::max<std::size_t>(1, cfg_.max_blocks)) {
            switch (grow_for(bytes, align, bi, out, last, ec, why, what)) {
                case grown::taken: grew = true; return true;
                case grown::failed: return false;
                case grown::no_fit: break;
            }
        }
        ++failed_;
        ec = errc::capacity_exceeded;
        if (why != nullptr) *why = no_room_message(last, what());
        return false;
    }

    // The first block with an aligned free range of `bytes`; `last` keeps the last block's answer.
    bool take_from_blocks(std::uint64_t bytes, std::uint64_t align, std::size_t& bi, block_range& out,
                          block_result& last) {
        for (std::size_t i = 0; i < blocks_.size(); ++i) {
            if (!blocks_[i]) continue;
            block_result r = blocks_[i]->ranges.allocate(bytes, align);
            if (r) {
                bi = i;
                out = r.range;
                return true;
            }
            last = r;
        }
        return false;
    }

    enum class grown : std::uint8_t { taken, failed, no_fit };

    // Adds a block for a request no block could take and takes the range from it: `taken`;
    // `failed` (ec and why set, counted) when no block the pool may add can hold the request or
    // the backend refuses the block; `no_fit` when the new block, of a coarser granule than the
    // first, still cannot take it (the block is given back; the pool stays unchanged).
    template <class What>
    grown grow_for(std::uint64_t bytes, std::uint64_t align, std::size_t& bi, block_range& out, block_result& last,
                   std::error_code& ec, std::string* why, What& what) {
        // A request no block the pool may add can hold is refused before any block is added:
        // impossible requests must not use up pool_config::max_blocks.
        std::uint64_t need = 0;
        if (!detail::pool_need(bytes, align, gran_, need) || need > block_limit_) {
            ++failed_;
            ec = errc::capacity_exceeded;
            if (why != nullptr)
                *why = "unibuf: buffer_pool: cannot " + what() + ": the request is larger than the largest block "
                       "the pool may add (" + std::to_string(block_limit_) + " bytes: the smaller of "
                       "device_limits::max_allocation_size and block_allocator::max_capacity; " + describe_free() +
                       "); no block was added, the pool is unchanged and still usable";
            return grown::failed;
        }
        // grow_block_bytes and the first block's size are at most block_allocator::max_capacity
        // (checked when the pool was made): rounding them cannot wrap.
        const std::uint64_t base = cfg_.grow_block_bytes != 0 ? cfg_.grow_block_bytes : first_bytes_;
        const std::uint64_t size = std::max(std::min(round_up(base, gran_), block_limit_ & ~(gran_ - 1)), need);
        std::string grow_why;
        std::error_code gec;
        const std::size_t i = add_block(size, true, gec, grow_why);
        if (gec) {
            ++failed_;
            ec = errc::out_of_memory;
            if (why != nullptr)
                *why = "unibuf: buffer_pool: cannot " + what() + ": the pool is full (" + describe_free() +
                       ") and growing it failed: " + grow_why + "; the pool is unchanged and still usable";
            return grown::failed;
        }
        block_result r = blocks_[i]->ranges.allocate(bytes, align);
        if (r) {
            bi = i;
            out = r.range;
            return grown::taken;
        }
        // Only when the backend chose memory of a coarser granule for this block than for the
        // first (the block was sized for the request): the pool stays unchanged all the same.
        blocks_[i].reset();
        last = r;
        return grown::no_fit;
    }

    // Why a request found no room: the last block's answer, what is free, and why the pool did not grow.
    std::string no_room_message(const block_result& last, const std::string& what) const {
        const char* reason = "not enough free space";
        if (last.status == block_status::too_large) reason = "the request is larger than any block of the pool";
        if (last.status == block_status::fragmented)
            reason = "the free space is fragmented: enough bytes are free in total, but no contiguous aligned "
                     "range is large enough";
        return "unibuf: buffer_pool: cannot " + what + ": " + reason + " (" + describe_free() + ")" +
               (cfg_.growth == pool_growth::none
                    ? std::string("; growth is off (pool_config::growth)")
                    : "; the pool already holds the most blocks allowed (pool_config::max_blocks = " +
                          std::to_string(cfg_.max_blocks) + ")");
    }

    // Allocates a block of `bytes` from the backend into a free slot; returns its index.
    std::size_t add_block(std::uint64_t bytes, bool grown, std::error_code& ec, std::string& why) {
        ec.clear();
        memory_request req = request_;
        req.size_bytes = bytes;
        if (bytes > block_allocator::max_capacity) {
            ec = errc::invalid_argument;
            why = "a block of " + std::to_string(bytes) + " bytes exceeds the largest block (" +
                  std::to_string(block_allocator::max_capacity) + " bytes)";
            return 0;
        }
        std::string backend_why;
        allocation_type a = [&] {
            if constexpr (requires { backend_->try_allocate(req, ec, backend_why); })
                return backend_->try_allocate(req, ec, backend_why);  // keeps the backend's message
            else
                return backend_->try_allocate(req, ec);
        }();
        if (ec) {
            why = "the backend '" + std::string(backend_->name()) + "' could not allocate a block of " +
                  std::to_string(bytes) + " bytes: " + (backend_why.empty() ? ec.message() : backend_why);
            return 0;
        }
        ++backend_allocs_;
        if (!a.report().host_coherent && !non_coherent_) {
            // The backend chose non-coherent memory although the policy did not ask for flushes:
            // keep slices atom-separated all the same.
            non_coherent_ = true;
            gran_ = std::max(gran_, backend_->limits().non_coherent_atom);
        }
        auto b = std::make_unique<block>(std::move(a), bytes, gran_, cfg_.reserve_buffers, grown);
        for (std::size_t i = 0; i < blocks_.size(); ++i) {
            if (!blocks_[i]) {
                blocks_[i] = std::move(b);
                return i;
            }
        }
        blocks_.push_back(std::move(b));
        return blocks_.size() - 1;
    }

    static std::string describe(std::uint64_t bytes, std::uint64_t align, std::uint64_t elements,
                                std::uint64_t element_size) {
        return std::to_string(elements) + " elements of " + std::to_string(element_size) +
               (element_size == 1 ? " byte (" : " bytes (") + std::to_string(bytes) + " bytes, alignment " +
               std::to_string(align) + ")";
    }
    std::string describe_free() const {
        std::uint64_t cap = 0, free = 0, largest = 0;
        std::size_t n = 0;
        for (const auto& b : blocks_) {
            if (!b) continue;
            ++n;
            cap += b->ranges.capacity();
            free += b->ranges.free_bytes();
            largest = std::max(largest, b->ranges.largest_free());
        }
        return std::to_string(free) + " of " + std::to_string(cap) + " bytes left in " + std::to_string(n) +
               (n == 1 ? " block" : " blocks") + ", largest contiguous free range " + std::to_string(largest) +
               " bytes, " + std::to_string(live_) + " buffers alive";
    }

    B* backend_;
    pool_config cfg_;
    memory_request request_;
    std::uint64_t gran_ = cache_line;
    std::uint64_t first_bytes_ = 0;
    std::uint64_t batch_bytes_ = 0;
    std::uint64_t block_limit_ = block_allocator::max_capacity;  // largest block the pool may allocate
    bool non_coherent_ = false;
    mutable Locking lock_;
    std::vector<std::unique_ptr<block>> blocks_;  // index = high half of a slice handle; null = trimmed
    std::vector<region> regions_;
    std::uint32_t free_region_ = no_region;
    std::size_t open_regions_ = 0;     // batches not ended
    std::size_t regions_in_use_ = 0;   // batches whose region is still held (open or with live buffers)
    std::size_t live_ = 0;
    bool orphaned_ = false;
    // statistics
    std::uint64_t in_use_ = 0, peak_in_use_ = 0;
    std::size_t peak_live_ = 0;
    std::uint64_t acquires_ = 0, releases_ = 0, failed_ = 0, elements_ = 0, abandoned_ = 0;
    std::uint64_t largest_bytes_ = 0, largest_elements_ = 0;
    std::uint64_t batches_ = 0, peak_batch_ = 0;
    std::uint64_t avoided_ = 0, backend_allocs_ = 0;
};

} // namespace detail

} // namespace unibuf
