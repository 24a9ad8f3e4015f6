/// @file pool.hpp
/// @brief `basic_buffer_pool`: buffers sub-allocated from memory allocated up front.
///
/// A pool allocates one large block from its backend when it is made (sized by `pool_config`, e.g.
/// for N batches of given input/output buffers) and hands out `basic_buffer`s that live in slices
/// of it. Acquiring and releasing a buffer never calls the backend: the ranges come from a
/// `block_allocator` (TLSF, O(1)); a buffer's destructor returns its range through the slice's
/// release callback. The backend is called again only when the optional grow policy adds a block.
///
/// Alignment of every slice: its element type, a 64-byte cache line, the device's
/// `min_storage_offset_alignment` (so any slice can be bound as a storage buffer) and, for memory
/// that needs explicit flushes (`coherence::explicit_flush`, or memory the backend reports as not
/// host-coherent), its `non_coherent_atom`: sizes and offsets are whole atoms, so flushing or
/// invalidating one slice never touches another slice's bytes.
///
/// Threads: `buffer_pool` is single-threaded (no locks, the fastest): use one pool per thread or
/// per device/queue, and release its buffers on that thread. `locked_buffer_pool` takes a mutex
/// in acquire and release, so buffers may be acquired and destroyed on any thread.
///
/// Lifetime: the backend must outlive the pool and its buffers. A pool destroyed while buffers
/// are alive hands its memory over to them; the blocks are freed when the last one is released.
///
/// @code
/// unibuf::host_backend dev;
/// // Memory for 3 batches of one 1024-float input and one 256-float output, allocated now.
/// unibuf::buffer_pool<unibuf::host_backend, unibuf::access::read_write> pool(
///     dev, unibuf::pool_config::for_batches(3, {unibuf::buffer_shape::of<float>(1024),
///                                               unibuf::buffer_shape::of<float>(256)}));
/// auto in = pool.acquire<float>(1024);    // a free-standing slice: no backend call
/// in.fill(1.0f);
/// {
///     auto batch = pool.begin_batch();    // one batch region (1024 + 256 floats)
///     auto x = batch.acquire<float>(700); // bumped from the region
///     auto y = batch.acquire<float>(256);
/// }                                       // batch ended; its region returns with x and y
/// @endcode
///
/// Two ways to take memory: `acquire` (any size, TLSF ranges; varying sizes with overlapping
/// lifetimes can fragment the free space: a request then fails with a message that says so, and
/// `stats().fragmentation` shows it) and batches (`begin_batch`: equal-sized regions, so the
/// configured number of batches always fits while the pool holds nothing else).
///
/// Sizes: every byte count derived from a caller's count or configuration (`count * sizeof(T)`,
/// batch sizing, rounding to the granule, alignment padding, grown block sizes) is checked before
/// use. A request whose byte size overflows 64 bits, or that no block the pool may hold or add can
/// take, fails with `errc::capacity_exceeded` naming its element count and element size; it adds
/// no block and leaves the pool as it was (with growth on, impossible requests never use up
/// `pool_config::max_blocks`).
///
/// Types: `basic_buffer_pool<B, Locking, Policies...>`, `buffer_pool` and `locked_buffer_pool`
/// are aliases of `basic_buffer_pool_of<B, Locking, Access, Coherence, Placement, Sync>`, one class
/// per resolved policy set: policies in any order, missing ones defaulted, name one type. A
/// non-backend `B` (rule R9), a `Locking` that is not a locking policy (rule R14) and an element
/// type that is not trivially copyable (rule R1) are each rejected with one message.
#pragma once

#include "block_allocator.hpp"
#include "../core/vocabulary.hpp"
#include "../buffer/basic_buffer.hpp"
#include "../buffer/concepts.hpp"
#include "../core/detail/meta.hpp"
#include "../policy/policy_set.hpp"
#include "../core/error.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief Thread-safety policies of a pool.
namespace pool_locking {

/// @brief No locking: one thread at a time uses the pool and destroys its buffers. Cost: none.
struct unlocked {
    static constexpr bool thread_safe = false;
    static constexpr std::string_view name = "pool_locking::unlocked";
    void lock() noexcept {}
    void unlock() noexcept {}
};

/// @brief A mutex around acquire, release and statistics: any thread may acquire and destroy
/// buffers. Cost: one uncontended lock per acquire and per release (tens of ns); contended
/// pools serialize, so prefer one pool per thread where the work allows it.
struct mutex {
    static constexpr bool thread_safe = true;
    static constexpr std::string_view name = "pool_locking::mutex";
    void lock() { m_.lock(); }
    void unlock() noexcept { m_.unlock(); }

private:
    std::mutex m_;
};

} // namespace pool_locking

/// @brief What a full pool does.
enum class pool_growth : std::uint8_t {
    none,        ///< fail with `errc::capacity_exceeded` (default: memory is fixed up front)
    add_blocks,  ///< allocate another block from the backend, up to `pool_config::max_blocks`
};

/// @brief One buffer of a batch, for sizing a pool: its largest element count and element layout.
struct buffer_shape {
    std::uint64_t max_elements = 0;
    std::uint64_t element_size = 1;
    std::uint64_t element_align = 1;
    /// @brief The shape of a buffer of at most `max_elements` `T`s.
    template <class T>
    [[nodiscard]] static constexpr buffer_shape of(std::uint64_t max_elements) noexcept {
        return {max_elements, sizeof(T), alignof(T)};
    }
};

/// @brief How much memory a pool allocates up front, and what it does when full.
struct pool_config {
    /// @brief Bytes of the first block; 0 to size it from the batch sizing below only.
    std::uint64_t block_bytes = 0;
    /// @brief Batches in flight at once (batch sizing): the block holds `batch_count` times every
    /// buffer of `batch_buffers` at its maximum size, each rounded to the pool's alignment.
    std::size_t batch_count = 0;
    /// @brief The input and output buffers of one batch.
    std::vector<buffer_shape> batch_buffers;
    /// @brief What a full pool does (default: fail; memory stays fixed).
    pool_growth growth = pool_growth::none;
    /// @brief Bytes of each added block (0: the first block's size; a larger request gets a block
    /// of its own size).
    std::uint64_t grow_block_bytes = 0;
    /// @brief Most blocks the pool holds, the first included.
    std::size_t max_blocks = 8;
    /// @brief Minimum slice alignment on top of the device's (0: none); a power of two.
    std::uint64_t min_alignment = 0;
    /// @brief Live buffers the bookkeeping is reserved for up front (beyond it, it grows on the heap).
    std::size_t reserve_buffers = 256;

    /// @brief A pool of one block of `bytes` bytes.
    [[nodiscard]] static pool_config with_bytes(std::uint64_t bytes) {
        pool_config c;
        c.block_bytes = bytes;
        return c;
    }
    /// @brief A pool sized for `batches` batches of the buffers in `per_batch`.
    [[nodiscard]] static pool_config for_batches(std::size_t batches, std::initializer_list<buffer_shape> per_batch) {
        pool_config c;
        c.batch_count = batches;
        c.batch_buffers.assign(per_batch.begin(), per_batch.end());
        return c;
    }
};

/// @brief A pool's counters (a snapshot from `stats()`). "Bytes" are slice sizes after rounding
/// to the pool's granularity.
struct pool_stats {
    std::uint64_t capacity_bytes = 0;         ///< bytes of all blocks
    std::size_t blocks = 0;                   ///< blocks held (the first plus grown ones)
    std::uint64_t bytes_in_use = 0;           ///< bytes taken: live free-standing buffers plus whole batch regions still held
    std::uint64_t peak_bytes_in_use = 0;      ///< most bytes in use at once
    std::size_t live_buffers = 0;             ///< buffers alive now
    std::size_t peak_live_buffers = 0;        ///< most buffers alive at once
    std::uint64_t acquires = 0;               ///< buffers handed out
    std::uint64_t releases = 0;               ///< buffers returned
    std::uint64_t failed_acquires = 0;        ///< acquires (and batch opens) that found no room or could not grow (not: those refused on their arguments, a count of 0 or a byte size no pool can hold)
    std::uint64_t elements = 0;               ///< elements handed out, all buffers together
    std::uint64_t largest_buffer_bytes = 0;   ///< peak usage of one buffer, in bytes
    std::uint64_t largest_buffer_elements = 0;///< peak usage of one buffer, in elements
    std::size_t open_batches = 0;             ///< batches begun and not yet ended
    std::uint64_t batches = 0;                ///< batches ended
    std::uint64_t batch_bytes = 0;            ///< bytes of one batch region (from the batch sizing)
    std::uint64_t peak_batch_bytes = 0;       ///< most bytes one ended batch used of its region
    std::uint64_t allocations_avoided = 0;    ///< acquires and batch regions served without a backend allocation
    std::uint64_t backend_allocations = 0;    ///< blocks allocated from the backend (first included)
    std::size_t free_ranges = 0;              ///< free ranges over all blocks (1 per empty block)
    std::uint64_t largest_free = 0;           ///< largest contiguous free range
    double fragmentation = 0.0;               ///< `1 - largest_free / free bytes` (0: not fragmented)
};

namespace detail {

inline constexpr std::uint64_t cache_line = 64;

// Every byte count derived from a caller's count goes through checked arithmetic
// (detail::checked_mul / checked_add of meta.hpp, and these two for the pool's power-of-two granules).
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
        if (cfg_.growth == pool_growth::add_blocks && block_count() < std::max<std::size_t>(1, cfg_.max_blocks)) {
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
                return false;
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
                return false;
            }
            block_result r = blocks_[i]->ranges.allocate(bytes, align);
            if (r) {
                bi = i;
                out = r.range;
                grew = true;
                return true;
            }
            // Only when the backend chose memory of a coarser granule for this block than for the
            // first (the block was sized for the request): the pool stays unchanged all the same.
            blocks_[i].reset();
            last = r;
        }
        ++failed_;
        ec = errc::capacity_exceeded;
        if (why != nullptr) {
            const char* reason = "not enough free space";
            if (last.status == block_status::too_large) reason = "the request is larger than any block of the pool";
            if (last.status == block_status::fragmented)
                reason = "the free space is fragmented: enough bytes are free in total, but no contiguous aligned "
                         "range is large enough";
            *why = "unibuf: buffer_pool: cannot " + what() + ": " + reason + " (" + describe_free() + ")" +
                   (cfg_.growth == pool_growth::none
                        ? std::string("; growth is off (pool_config::growth)")
                        : "; the pool already holds the most blocks allowed (pool_config::max_blocks = " +
                              std::to_string(cfg_.max_blocks) + ")");
        }
        return false;
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
        allocation_type a = backend_->try_allocate(req, ec);
        if (ec) {
            why = "the backend '" + std::string(backend_->name()) + "' could not allocate a block of " +
                  std::to_string(bytes) + " bytes: " + ec.message();
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
    std::uint64_t acquires_ = 0, releases_ = 0, failed_ = 0, elements_ = 0;
    std::uint64_t largest_bytes_ = 0, largest_elements_ = 0;
    std::uint64_t batches_ = 0, peak_batch_ = 0;
    std::uint64_t avoided_ = 0, backend_allocs_ = 0;
};

} // namespace detail

/// @brief What a pool's `Locking` argument must provide (rule R14): default construction,
/// `lock()`, `unlock()` and `static constexpr bool thread_safe`, as `pool_locking::unlocked` and
/// `pool_locking::mutex` do.
template <class L>
concept PoolLocking = std::default_initializable<L> && requires(L& l) {
    l.lock();
    l.unlock();
    { L::thread_safe } -> std::convertible_to<bool>;
};

/// @brief The one pool class per backend, locking and resolved policy set: `basic_buffer_pool`,
/// `buffer_pool` and `locked_buffer_pool` name it with the policies in any order, defaults filled in.
///
/// Slices of memory allocated up front, handed out as `basic_buffer<T, B, Access, Coherence,
/// Placement, Sync>`. All buffers of a pool share its policies (they live in memory allocated for
/// them); the element type varies per `acquire<T>`. Move-only handle; see the file comment for
/// threads and lifetime.
///
/// An empty pool (moved from): `acquire`, `try_acquire`, `begin_batch`, `try_begin_batch`,
/// `config`, `report` and `backend` report `errc::invalid_argument` ("... on an empty (moved-from)
/// pool"); `can_fit`/`can_fit_bytes` are false, `stats` all zero, `reset_stats` and `trim` do
/// nothing, `granularity` is 0, `operator bool` false. Each member's comment says which.
///
/// @tparam B backend (`Backend` concept)
/// @tparam Locking `pool_locking::unlocked` (single-threaded) or `pool_locking::mutex`
/// @tparam Access, Coherence, Placement, Sync the buffers' resolved policies
template <class B, class Locking, class Access, class Coherence, class Placement, class Sync>
class basic_buffer_pool_of {
    using set = policy_set<Access, Coherence, Placement, Sync>;
    using core = detail::pool_core<B, Locking>;
    // An element type rule R1 rejects is replaced by std::byte in acquire's result, so that the
    // rejection (acquire's static_assert) is the only error.
    template <class T>
    using element_or_byte = std::conditional_t<BufferElement<T>, T, std::byte>;

public:
    using backend_type = B;
    using locking = Locking;
    using access_policy = Access;
    using coherence_policy = Coherence;
    using placement_policy = Placement;
    using sync_policy = Sync;
    /// @brief The buffer type `acquire<T>` returns.
    template <class T>
    using buffer = basic_buffer<T, B, Access, Coherence, Placement, Sync>;

    static_assert(sizeof(buffer<std::byte>) > 0, "the pool's policies must form a valid basic_buffer");

    /// @brief Allocates the pool's memory now, as `cfg` says.
    /// @throws std::system_error invalid_argument (no size, a limit that is not a power of two, a
    ///         grow block above the largest block), capacity_exceeded (the batch sizing overflows 64
    ///         bits: names the buffer shape, its element count and element size), or the backend's
    ///         error (out_of_memory, ...) naming the bytes asked for
    basic_buffer_pool_of(B& backend, const pool_config& cfg) {
        std::error_code ec;
        std::string why;
        core_ = make(backend, cfg, ec, why);
        throw_if(ec, why);
    }

    /// @brief Non-throwing construction: an empty optional and `ec` (same codes) on failure.
    [[nodiscard]] static std::optional<basic_buffer_pool_of> try_create(B& backend, const pool_config& cfg,
                                                                        std::error_code& ec) noexcept {
        std::string why;
#if UNIBUF_EXCEPTIONS
        try {
            core* c = make(backend, cfg, ec, why);
            if (ec) return std::nullopt;
            return std::optional<basic_buffer_pool_of>(basic_buffer_pool_of(c));
        } catch (const std::bad_alloc&) {
            ec = errc::out_of_memory;
            return std::nullopt;
        }
#else
        core* c = make(backend, cfg, ec, why);
        if (ec) return std::nullopt;
        return std::optional<basic_buffer_pool_of>(basic_buffer_pool_of(c));
#endif
    }

    basic_buffer_pool_of(const basic_buffer_pool_of&) = delete;
    basic_buffer_pool_of& operator=(const basic_buffer_pool_of&) = delete;
    /// @brief Takes over `o`'s memory and buffers; `o` becomes empty (see the class comment).
    basic_buffer_pool_of(basic_buffer_pool_of&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
    /// @brief Lets go of this pool's memory (as the destructor does), then takes over `o`'s; `o`
    /// becomes empty. Self-assignment does nothing.
    basic_buffer_pool_of& operator=(basic_buffer_pool_of&& o) noexcept {
        if (this != &o) {
            if (core_ != nullptr) core::orphan(core_);
            core_ = std::exchange(o.core_, nullptr);
        }
        return *this;
    }
    /// @brief Frees the pool's memory, or leaves it to the buffers still alive (freed with the
    /// last). Nothing on an empty pool.
    ~basic_buffer_pool_of() {
        if (core_ != nullptr) core::orphan(core_);
    }

    /// @brief False for an empty (moved-from) pool.
    [[nodiscard]] explicit operator bool() const noexcept { return core_ != nullptr; }

    /// @brief A buffer of `count` `T`s in a slice of the pool. Never calls the backend unless the
    /// grow policy adds a block.
    /// @throws std::system_error capacity_exceeded (what was asked: elements and element size,
    ///         what is left, whether the free space is fragmented; or a byte size that overflows 64
    ///         bits or exceeds any block: the pool is unchanged, no block is added), out_of_memory
    ///         (growth failed; the pool stays usable), invalid_argument (count 0, or an empty pool)
    template <class T>
    [[nodiscard]] buffer<element_or_byte<T>> acquire(std::size_t count) {
        static_assert(BufferElement<T>,
                      "unibuf: buffer_pool::acquire<T>: a pool buffer's element type must be a trivially copyable, "
                      "non-const, non-volatile object type: its bytes are mapped, flushed and copied as raw memory "
                      "(rule R1)");
        std::error_code ec;
        std::string why;
        std::optional<buffer<element_or_byte<T>>> b = acquire_impl<element_or_byte<T>>(count, ec, &why);
        throw_if(ec, why);
        return std::move(*b);
    }

    /// @brief Non-throwing `acquire`: an empty optional and `ec` (same codes) on failure,
    /// `invalid_argument` on an empty pool.
    template <class T>
    [[nodiscard]] std::optional<buffer<element_or_byte<T>>> try_acquire(std::size_t count, std::error_code& ec) noexcept {
        static_assert(BufferElement<T>,
                      "unibuf: buffer_pool::try_acquire<T>: a pool buffer's element type must be a trivially "
                      "copyable, non-const, non-volatile object type (rule R1)");
#if UNIBUF_EXCEPTIONS
        try {
            return acquire_impl<element_or_byte<T>>(count, ec, nullptr);
        } catch (const std::bad_alloc&) {  // bookkeeping growth beyond pool_config::reserve_buffers
            ec = errc::out_of_memory;
            return std::nullopt;
        }
#else
        return acquire_impl<element_or_byte<T>>(count, ec, nullptr);
#endif
    }

    /// @brief True when `acquire<T>(count)` would succeed now without growing the pool; false on
    /// an empty pool and for a count whose byte size overflows.
    template <class T>
    [[nodiscard]] bool can_fit(std::size_t count) const {
        static_assert(BufferElement<T>,
                      "unibuf: buffer_pool::can_fit<T>: a pool buffer's element type must be a trivially copyable, "
                      "non-const, non-volatile object type (rule R1)");
        std::uint64_t bytes = 0;
        if (core_ == nullptr || count == 0 || !detail::checked_mul(count, sizeof(element_or_byte<T>), bytes))
            return false;
        return core_->can_fit(bytes, alignof(element_or_byte<T>));
    }
    /// @brief True when `bytes` at `alignment` (a power of two) would fit now without growing;
    /// false on an empty pool.
    [[nodiscard]] bool can_fit_bytes(std::uint64_t bytes, std::uint64_t alignment = 1) const {
        return core_ != nullptr && bytes != 0 && core_->can_fit(bytes, alignment);
    }

    /// @brief One batch: a region of `batch_bytes` reserved at once, from which `acquire` bumps
    /// the batch's buffers (no search, no fragmentation inside). Batch regions all have the same
    /// size and the block is a whole number of them, so in a pool made with
    /// `pool_config::for_batches(n, shapes)` that holds only batches, any `n` batches whose buffers
    /// stay within the shapes (at most one buffer per shape, each at most its maximum) fit at
    /// once, whatever their sizes and release order: every free range is a whole number of batch
    /// regions. Free-standing `acquire`s of varying sizes cannot promise that: their free space
    /// can fragment.
    /// Move-only; ending it (`end()` or the destructor) keeps its buffers valid: the region
    /// returns to the pool when the batch has ended and its last buffer is released.
    /// An ended or moved-from batch is empty: `acquire`/`try_acquire` report invalid_argument,
    /// `bytes_left` and `capacity` are 0, `end` does nothing.
    class batch {
    public:
        /// @brief An empty batch (holds no region).
        batch() = default;
        /// @brief Takes over `o`'s region; `o` becomes empty.
        batch(batch&& o) noexcept : core_(std::exchange(o.core_, nullptr)), id_(o.id_) {}
        /// @brief Ends this batch (if not empty), then takes over `o`'s region; `o` becomes empty.
        batch& operator=(batch&& o) noexcept {
            if (this != &o) {
                end();
                core_ = std::exchange(o.core_, nullptr);
                id_ = o.id_;
            }
            return *this;
        }
        batch(const batch&) = delete;
        batch& operator=(const batch&) = delete;
        /// @brief Ends the batch (nothing when empty).
        ~batch() { end(); }

        /// @brief A buffer of `count` `T`s from this batch's region.
        /// @throws std::system_error capacity_exceeded (the request, in elements and element size,
        ///         and the region's bytes left; also for a byte size that overflows), invalid_argument
        ///         (count 0, or an ended/moved-from batch)
        template <class T>
        [[nodiscard]] buffer<element_or_byte<T>> acquire(std::size_t count) {
            static_assert(BufferElement<T>,
                          "unibuf: buffer_pool::batch::acquire<T>: a pool buffer's element type must be a trivially "
                          "copyable, non-const, non-volatile object type (rule R1)");
            std::error_code ec;
            std::string why;
            std::optional<buffer<element_or_byte<T>>> b = acquire_in<element_or_byte<T>>(core_, id_, count, ec, &why);
            throw_if(ec, why);
            return std::move(*b);
        }
        /// @brief Non-throwing `acquire` (same codes; invalid_argument on an ended/moved-from batch).
        template <class T>
        [[nodiscard]] std::optional<buffer<element_or_byte<T>>> try_acquire(std::size_t count,
                                                                            std::error_code& ec) noexcept {
            static_assert(BufferElement<T>,
                          "unibuf: buffer_pool::batch::try_acquire<T>: a pool buffer's element type must be a "
                          "trivially copyable, non-const, non-volatile object type (rule R1)");
            return acquire_in<element_or_byte<T>>(core_, id_, count, ec, nullptr);
        }
        /// @brief Bytes of the region not yet handed out (0 for an ended/moved-from batch).
        [[nodiscard]] std::uint64_t bytes_left() const { return core_ != nullptr ? core_->region_left(id_) : 0; }
        /// @brief Bytes of the region (0 for an ended/moved-from batch).
        [[nodiscard]] std::uint64_t capacity() const { return core_ != nullptr ? core_->region_size(id_) : 0; }
        /// @brief True until `end()` (false for a moved-from batch).
        [[nodiscard]] explicit operator bool() const noexcept { return core_ != nullptr; }
        /// @brief Ends the batch (statistics: `batches`, `peak_batch_bytes`); its buffers stay
        /// valid. Nothing for an ended/moved-from batch.
        void end() noexcept {
            if (core_ != nullptr) core::close_region(std::exchange(core_, nullptr), id_);
        }

    private:
        friend class basic_buffer_pool_of;
        batch(core* c, std::uint32_t id) noexcept : core_(c), id_(id) {}
        core* core_ = nullptr;
        std::uint32_t id_ = 0;
    };

    /// @brief Begins a batch of the configured batch size (`pool_config::for_batches`), or of
    /// `bytes` when given (rounded up to the granularity).
    /// @throws std::system_error capacity_exceeded (all batch regions in use: says how many are
    ///         open and how many the pool was sized for; or `bytes` larger than any block the pool
    ///         may hold), out_of_memory (growth failed), invalid_argument (no batch sizing and no
    ///         size, or an empty pool)
    [[nodiscard]] batch begin_batch(std::uint64_t bytes = 0) {
        std::error_code ec;
        std::string why;
        std::uint32_t id = 0;
        if (core_ == nullptr) empty_error(ec, &why, "begin_batch");
        else (void)core_->open_region(bytes, id, ec, &why);
        throw_if(ec, why);
        return batch(core_, id);
    }
    /// @brief Non-throwing `begin_batch`: an empty optional and `ec` (same codes) on failure.
    [[nodiscard]] std::optional<batch> try_begin_batch(std::error_code& ec, std::uint64_t bytes = 0) noexcept {
        std::uint32_t id = 0;
        ec.clear();
        if (core_ == nullptr) {
            empty_error(ec, nullptr, "try_begin_batch");
            return std::nullopt;
        }
#if UNIBUF_EXCEPTIONS
        try {
            if (!core_->open_region(bytes, id, ec, nullptr)) return std::nullopt;
        } catch (const std::bad_alloc&) {
            ec = errc::out_of_memory;
            return std::nullopt;
        }
#else
        if (!core_->open_region(bytes, id, ec, nullptr)) return std::nullopt;
#endif
        return std::optional<batch>(batch(core_, id));
    }

    /// @brief A snapshot of the pool's counters (all zero for an empty pool).
    [[nodiscard]] pool_stats stats() const { return core_ != nullptr ? core_->stats() : pool_stats{}; }
    /// @brief Zeroes the counters (peaks restart from the current use). Nothing on an empty pool.
    void reset_stats() {
        if (core_ != nullptr) core_->reset_stats();
    }
    /// @brief Returns grown blocks that hold no buffer to the backend; the first block stays.
    /// @return bytes returned (0 on an empty pool)
    std::uint64_t trim() { return core_ != nullptr ? core_->trim() : 0; }

    /// @brief Offset and size granule of every slice (see the file comment), in bytes; 0 for an
    /// empty pool.
    [[nodiscard]] std::uint64_t granularity() const noexcept { return core_ != nullptr ? core_->granularity() : 0; }
    /// @brief The configuration the pool was made with.
    /// @throws std::system_error invalid_argument on an empty pool
    [[nodiscard]] const pool_config& config() const { return checked_core("config")->config(); }
    /// @brief The backend's report on the first block (memory chosen, fallbacks).
    /// @throws std::system_error invalid_argument on an empty pool
    [[nodiscard]] const allocation_report& report() const { return checked_core("report")->report(); }
    /// @brief The backend.
    /// @throws std::system_error invalid_argument on an empty pool
    [[nodiscard]] B& backend() const { return checked_core("backend")->backend(); }

    /// @brief Slice granule for these policies on a device with limits `l` (a power of two when
    /// the limits and `cfg.min_alignment` are).
    [[nodiscard]] static std::uint64_t granularity_for(const device_limits& l, const pool_config& cfg) noexcept {
        std::uint64_t g = detail::cache_line;
        g = std::max(g, l.min_storage_offset_alignment);
        if (set::coherence::requires_flush) g = std::max(g, l.non_coherent_atom);
        return std::max(g, cfg.min_alignment);
    }

    /// @brief Bytes of one batch region for `cfg` at granule `gran` (a power of two): every
    /// buffer of `batch_buffers` at its maximum, rounded to the granule, plus worst-case alignment
    /// padding. `UINT64_MAX` when that overflows 64 bits (the constructor rejects such a `cfg`).
    [[nodiscard]] static std::uint64_t batch_bytes_for(const pool_config& cfg, std::uint64_t gran) noexcept {
        std::uint64_t batch = 0, block = 0;
        const sizing r = sizes_for(cfg, gran, batch, block, nullptr);
        return r == sizing::ok || r == sizing::block_overflow ? batch : ~std::uint64_t{0};
    }
    /// @brief Bytes of the first block for `cfg` at granule `gran` (block_bytes or batch sizing,
    /// rounded to the granule). `UINT64_MAX` when that overflows 64 bits.
    [[nodiscard]] static std::uint64_t block_bytes_for(const pool_config& cfg, std::uint64_t gran) noexcept {
        std::uint64_t batch = 0, block = 0;
        return sizes_for(cfg, gran, batch, block, nullptr) == sizing::ok ? block : ~std::uint64_t{0};
    }

private:
    explicit basic_buffer_pool_of(core* c) noexcept : core_(c) {}

    enum class sizing : std::uint8_t { ok, bad_granule, batch_overflow, block_overflow };

    // Bytes of one batch region and of the first block for `cfg` at granule `gran`, every step
    // checked: on overflow, `why` (when given) names the configuration entry that overflows (a
    // buffer shape by its element count, element size and alignment).
    static sizing sizes_for(const pool_config& cfg, std::uint64_t gran, std::uint64_t& batch, std::uint64_t& block,
                            std::string* why) {
        batch = block = 0;
        if (gran == 0 || !std::has_single_bit(gran)) return sizing::bad_granule;
        for (std::size_t i = 0; i < cfg.batch_buffers.size(); ++i) {
            const buffer_shape& s = cfg.batch_buffers[i];
            const std::uint64_t a = std::max<std::uint64_t>(1, s.element_align);
            std::uint64_t bytes = 0, need = 0, sum = 0;
            if (!detail::checked_mul(s.max_elements, s.element_size, bytes) || !detail::pool_need(bytes, a, gran, need) ||
                !detail::checked_add(batch, need, sum)) {
                if (why != nullptr)
                    *why = "pool_config::batch_buffers[" + std::to_string(i) + "] of " + std::to_string(s.max_elements) +
                           " elements of " + std::to_string(s.element_size) + (s.element_size == 1 ? " byte" : " bytes") +
                           " (alignment " + std::to_string(a) + "): the batch size overflows 64 bits";
                return sizing::batch_overflow;
            }
            batch = sum;
        }
        std::uint64_t all = 0;
        if (!detail::checked_mul(batch, cfg.batch_count, all)) {
            if (why != nullptr)
                *why = "pool_config::batch_count = " + std::to_string(cfg.batch_count) + " batches of " +
                       std::to_string(batch) + " bytes: the pool's size overflows 64 bits";
            return sizing::block_overflow;
        }
        if (!detail::pool_round_up(std::max(cfg.block_bytes, all), gran, block)) {
            if (why != nullptr)
                *why = "pool_config::block_bytes = " + std::to_string(cfg.block_bytes) + ": rounded up to the granule (" +
                       std::to_string(gran) + " bytes) it overflows 64 bits";
            return sizing::block_overflow;
        }
        return sizing::ok;
    }

    static core* make(B& backend, const pool_config& cfg, std::error_code& ec, std::string& why) {
        ec.clear();
        const device_limits l = backend.limits();
        using limit = std::pair<const char*, std::uint64_t>;
        const limit checked[] = {{"device_limits::non_coherent_atom", l.non_coherent_atom},
                                 {"device_limits::min_storage_offset_alignment", l.min_storage_offset_alignment},
                                 {"pool_config::min_alignment", cfg.min_alignment == 0 ? 1 : cfg.min_alignment}};
        for (const auto& [name, v] : checked) {
            if (v == 0 || !std::has_single_bit(v)) {
                ec = errc::invalid_argument;
                why = std::string("unibuf: buffer_pool: ") + name + " = " + std::to_string(v) + " is not a power of two";
                return nullptr;
            }
        }
        for (std::size_t i = 0; i < cfg.batch_buffers.size(); ++i) {
            const std::uint64_t a = cfg.batch_buffers[i].element_align;
            if (a != 0 && !std::has_single_bit(a)) {
                ec = errc::invalid_argument;
                why = "unibuf: buffer_pool: pool_config::batch_buffers[" + std::to_string(i) + "].element_align = " +
                      std::to_string(a) + " is not a power of two";
                return nullptr;
            }
        }
        if (cfg.growth == pool_growth::add_blocks && cfg.grow_block_bytes > block_allocator::max_capacity) {
            ec = errc::invalid_argument;
            why = "unibuf: buffer_pool: pool_config::grow_block_bytes = " + std::to_string(cfg.grow_block_bytes) +
                  " exceeds the largest block (" + std::to_string(block_allocator::max_capacity) +
                  " bytes, block_allocator::max_capacity)";
            return nullptr;
        }
        const std::uint64_t gran = granularity_for(l, cfg);
        std::uint64_t batch = 0, bytes = 0;
        if (sizes_for(cfg, gran, batch, bytes, &why) != sizing::ok) {
            ec = errc::capacity_exceeded;
            why = "unibuf: buffer_pool: " + why + "; no memory was allocated";
            return nullptr;
        }
        if (bytes == 0) {
            ec = errc::invalid_argument;
            why = "unibuf: buffer_pool: pool_config gives no size: set block_bytes, or batch_count and batch_buffers";
            return nullptr;
        }
        auto c = std::make_unique<core>(backend, cfg, memory_request_for<set>(bytes));
        c->init(gran, bytes, batch, set::coherence::requires_flush, ec, why);
        if (ec) return nullptr;
        return c.release();
    }

    static void empty_error(std::error_code& ec, std::string* why, const char* what) {
        ec = errc::invalid_argument;
        if (why != nullptr) *why = std::string("unibuf: buffer_pool: ") + what + " on an empty (moved-from) pool";
    }
    [[nodiscard]] core* checked_core(const char* what) const {
        if (core_ == nullptr)
            throw_error(errc::invalid_argument, std::string("unibuf: buffer_pool: ") + what + "() on an empty (moved-from) pool");
        return core_;
    }

    // Checks the count; the byte size on success. A count whose byte size overflows 64 bits, or
    // exceeds any block a pool can hold, is rejected before the pool is looked at.
    template <class T>
    static bool check_count(std::size_t count, std::uint64_t& bytes, std::error_code& ec, std::string* why) {
        ec.clear();
        if (count == 0) {
            ec = errc::invalid_argument;
            if (why != nullptr) *why = "unibuf: buffer_pool: acquire of 0 elements; buffers need at least one element";
            return false;
        }
        const bool fits = detail::checked_mul(count, sizeof(T), bytes);
        if (!fits || bytes > block_allocator::max_capacity) {
            ec = errc::capacity_exceeded;
            if (why != nullptr)
                *why = "unibuf: buffer_pool: acquire of " + std::to_string(count) + " elements of " +
                       std::to_string(sizeof(T)) + " bytes: " +
                       (fits ? "its " + std::to_string(bytes) + " bytes exceed the largest block a pool can hold (" +
                                   std::to_string(block_allocator::max_capacity) + " bytes, block_allocator::max_capacity)"
                             : std::string("the byte size overflows 64 bits")) +
                       "; the pool is unchanged";
            return false;
        }
        return true;
    }

    template <class T>
    std::optional<buffer<T>> acquire_impl(std::size_t count, std::error_code& ec, std::string* why) {
        std::uint64_t bytes = 0, handle = 0, offset = 0;
        typename B::allocation* memory = nullptr;
        if (core_ == nullptr) {
            empty_error(ec, why, "acquire");
            return std::nullopt;
        }
        if (!check_count<T>(count, bytes, ec, why) ||
            !core_->acquire(bytes, alignof(T), count, sizeof(T), handle, memory, offset, ec, why))
            return std::nullopt;
        return std::optional<buffer<T>>(std::in_place, in_slice, core_->backend(), *memory, offset, count,
                                        slice_release{&core::release, core_, handle});
    }

    template <class T>
    static std::optional<buffer<T>> acquire_in(core* c, std::uint32_t id, std::size_t count, std::error_code& ec,
                                               std::string* why) {
        std::uint64_t bytes = 0, handle = 0, offset = 0;
        typename B::allocation* memory = nullptr;
        if (c == nullptr) {
            ec = errc::invalid_argument;
            if (why != nullptr) *why = "unibuf: buffer_pool: acquire on an ended or moved-from batch";
            return std::nullopt;
        }
        if (!check_count<T>(count, bytes, ec, why) ||
            !c->acquire_in(id, bytes, alignof(T), count, sizeof(T), handle, memory, offset, ec, why))
            return std::nullopt;
        return std::optional<buffer<T>>(std::in_place, in_slice, c->backend(), *memory, offset, count,
                                        slice_release{&core::release, c, handle});
    }

    core* core_ = nullptr;
};

namespace detail {

// Stand-in backend of a pool whose backend argument is rejected (rule R9): it satisfies the
// Backend concept, so that the rejection stays the only error. Declared, never defined: a program
// that names it does not compile.
struct rejected_pool_backend {
    struct fence {
        bool operator==(const fence&) const = default;
    };
    class allocation {
    public:
        std::byte* host_data();
        std::byte* host_data() const;
        std::uint64_t size() const;
        const allocation_report& report() const;
    };
    allocation allocate(const memory_request&);
    allocation try_allocate(const memory_request&, std::error_code&) noexcept;
    fence flush(allocation&, std::uint64_t, std::uint64_t);
    void invalidate(allocation&, std::uint64_t, std::uint64_t, std::chrono::nanoseconds);
    fence copy(allocation&, std::uint64_t, allocation&, std::uint64_t, std::uint64_t);
    bool wait(const fence&, std::chrono::nanoseconds);
    bool is_complete(const fence&) const;
    device_limits limits() const noexcept;
    std::string_view name() const noexcept;
    static rejected_pool_backend& instance();
};

// As plain constants, so that a failed static_assert prints its message, not the concept's
// unsatisfied requirements (GCC reports those as further errors).
template <class B>
inline constexpr bool pool_backend_ok = Backend<B>;
template <class L>
inline constexpr bool pool_locking_ok = PoolLocking<L>;

template <class B>
using pool_backend_or_stand_in = std::conditional_t<Backend<B>, B, rejected_pool_backend>;
template <class L>
using pool_locking_or_unlocked = std::conditional_t<PoolLocking<L>, L, pool_locking::unlocked>;

// A pool whose backend (rule R9) or locking (rule R14) argument is rejected: the diagnosis is
// one static_assert each; everything else compiles against stand-ins, so no cascade follows.
template <class B, class L, class A, class C, class P, class S>
class rejected_buffer_pool
    : public basic_buffer_pool_of<pool_backend_or_stand_in<B>, pool_locking_or_unlocked<L>, A, C, P, S> {
    using base = basic_buffer_pool_of<pool_backend_or_stand_in<B>, pool_locking_or_unlocked<L>, A, C, P, S>;
    static_assert(pool_backend_ok<B>,
                  "unibuf: the backend argument of a pool is not a backend: buffer_pool<B, ...> needs a B that "
                  "satisfies the Backend concept (allocation and fence types; allocate, try_allocate, flush, "
                  "invalidate, copy, wait, is_complete, limits, name), as host_backend, vulkan_backend and "
                  "gl_backend do (rule R9)");
    static_assert(pool_locking_ok<L>,
                  "unibuf: basic_buffer_pool<B, Locking, ...>: Locking is not a pool locking policy: it must be "
                  "default-constructible with lock(), unlock() and a static bool thread_safe, as "
                  "pool_locking::unlocked and pool_locking::mutex are (buffer_pool and locked_buffer_pool choose it "
                  "for you) (rule R14)");

    static pool_backend_or_stand_in<B>& backend_of(B& b) noexcept {
        if constexpr (Backend<B>) return b;
        else return rejected_pool_backend::instance();
    }

public:
    rejected_buffer_pool(B& backend, const pool_config& cfg) : base(backend_of(backend), cfg) {}
    static std::optional<rejected_buffer_pool> try_create(B& backend, const pool_config& cfg, std::error_code& ec) noexcept;
};

// The pool type of a backend, a locking policy and a policy list in any order: one class per
// resolved set. policy_set diagnoses the list (rules R2, R3) once.
template <class B, class L, class Set>
struct pick_buffer_pool {
    using type = std::conditional_t<
        Backend<B> && PoolLocking<L>,
        basic_buffer_pool_of<B, L, typename Set::access, typename Set::coherence, typename Set::placement,
                             typename Set::sync>,
        rejected_buffer_pool<B, L, typename Set::access, typename Set::coherence, typename Set::placement,
                             typename Set::sync>>;
};

} // namespace detail

/// @brief A pool of `basic_buffer<T, B, Policies...>` slices over memory allocated up front
/// (`basic_buffer_pool_of`: one type per backend, locking and resolved policies, whatever the
/// order of `Policies...`; missing categories take `default_policies`).
///
/// @tparam B backend (`Backend` concept; anything else is rejected with rule R9)
/// @tparam Locking `pool_locking::unlocked` (single-threaded) or `pool_locking::mutex` (rule R14)
/// @tparam Policies the buffers' policies, as for `basic_buffer`
template <class B, class Locking, class... Policies>
using basic_buffer_pool = typename detail::pick_buffer_pool<B, Locking, policy_set<Policies...>>::type;

/// @brief Single-threaded pool (see `basic_buffer_pool`): one per thread or per device.
template <class B, class... Policies>
using buffer_pool = basic_buffer_pool<B, pool_locking::unlocked, Policies...>;

/// @brief Pool whose acquire and release may be called from any thread (a mutex inside).
template <class B, class... Policies>
using locked_buffer_pool = basic_buffer_pool<B, pool_locking::mutex, Policies...>;

} // namespace unibuf
