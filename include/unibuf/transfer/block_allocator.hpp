/// @file block_allocator.hpp
/// @brief The pool's allocation algorithm: TLSF sub-allocation of offsets inside one block.
///
/// `block_allocator` hands out byte ranges `[offset, offset + size)` of a block of `capacity` bytes;
/// it never touches the memory itself (like VMA's virtual block), so it knows nothing of any GPU
/// API and is tested on the CPU.
///
/// ## Algorithm: TLSF (two-level segregated fit, Masmano et al. 2004)
/// - Free blocks sit in segregated lists indexed by a first level (the power of two of the size)
///   and a second level (32 linear steps inside that power of two). Two bitmaps say which lists
///   are non-empty, so finding a list with a block that certainly fits is two find-first-set
///   instructions: **O(1)**.
/// - Every block (free or used) keeps its physical neighbours (out-of-band boundary tags: the
///   nodes live in a side table, not in the managed memory, which may not even be host-visible).
///   `release` merges a block with free neighbours at once: **O(1)** and free ranges are always
///   fully coalesced (no two free blocks are ever adjacent).
/// - Sizes and offsets are multiples of `granularity` (a power of two the owner picks: cache line,
///   non-coherent atom, storage-offset alignment), so no two ranges ever share a granule.
///   A larger per-request alignment is met by splitting off the leading padding as a free block.
///
/// ## Under fragmentation
/// The O(1) search looks only at lists whose every block is large enough (good fit). When that
/// finds nothing, an exact search walks the few lists that may hold a block that fits (linear in
/// the free blocks there); only if that fails too does `allocate` fail. The failure says which
/// case it is (`block_status`): the request exceeds the block, the total free space is too small,
/// or the total free space would suffice but no contiguous (aligned) range does (`fragmented`,
/// with the largest free range reported). A failed call changes nothing.
///
/// Bookkeeping nodes come from a vector that grows only when more ranges are live than ever
/// before; `reserve` sizes it up front so that steady state never touches the heap.
/// Not thread-safe: the owner serializes calls (the pool does).
///
/// @code
/// unibuf::block_allocator a(1 << 20, 64);          // 1 MiB, 64-byte granules
/// auto r = a.allocate(1000, 256);                  // 1024 bytes at a 256-aligned offset
/// if (r) { use(r.range.offset); a.release(r.range.id); }
/// @endcode
#pragma once

#include "../core/config.hpp"
#include "../core/error.hpp"

#include <bit>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief Outcome of a `block_allocator::allocate` call.
enum class block_status : std::uint8_t {
    ok,                  ///< the range was allocated
    invalid_request,     ///< size 0 or an alignment that is not a power of two
    too_large,           ///< the request (rounded to the granularity) exceeds the whole block
    insufficient_space,  ///< fewer bytes are free than the request needs
    fragmented,          ///< enough bytes are free in total, but no contiguous aligned range is
};

/// @brief Printable name of a block status.
[[nodiscard]] constexpr const char* to_string(block_status s) noexcept {
    switch (s) {
        case block_status::ok: return "ok";
        case block_status::invalid_request: return "invalid request";
        case block_status::too_large: return "request larger than the block";
        case block_status::insufficient_space: return "not enough free space";
        case block_status::fragmented: return "free space fragmented";
    }
    return "?";
}

/// @brief One allocated range; `id` is the handle `release` takes.
struct block_range {
    std::uint64_t offset = 0;  ///< bytes from the start of the block, aligned as asked
    std::uint64_t size = 0;    ///< bytes reserved: the request rounded up to the granularity
    std::uint32_t id = 0;      ///< handle for `release` / `size_of`
};

/// @brief Result of `allocate`: the range, or why there is none and what was left.
struct block_result {
    block_status status = block_status::invalid_request;
    block_range range{};             ///< valid when `status == ok`
    std::uint64_t requested = 0;     ///< bytes asked for (before rounding)
    std::uint64_t free_bytes = 0;    ///< on failure: total free bytes at the time
    std::uint64_t largest_free = 0;  ///< on failure: largest free contiguous range
    /// @brief True when the range was allocated.
    [[nodiscard]] explicit operator bool() const noexcept { return status == block_status::ok; }
};

/// @brief TLSF allocator of byte ranges inside one block (see the file comment).
class block_allocator {
public:
    /// @brief Handle value that names no range.
    static constexpr std::uint32_t invalid_id = ~std::uint32_t{0};
    /// @brief Largest capacity accepted (keeps the size-class arithmetic free of overflow).
    static constexpr std::uint64_t max_capacity = std::uint64_t{1} << 56;

    /// @brief A block of `capacity` bytes (rounded down to `granularity`), all free.
    /// @param granularity power of two; every offset and size is a multiple of it
    /// @param reserve_ranges bookkeeping reserved for this many live ranges up front (at most
    ///        the number of granules of the block: more ranges can never be live)
    /// @throws std::system_error invalid_argument when `granularity` is not a power of two or
    ///         `capacity` exceeds `max_capacity` (both named in the message)
    /// @throws std::bad_alloc when the bookkeeping cannot be reserved
    explicit block_allocator(std::uint64_t capacity, std::uint64_t granularity = 1, std::size_t reserve_ranges = 64)
        : gran_shift_(static_cast<unsigned>(std::countr_zero(granularity == 0 ? 1 : granularity))) {
        if (!is_pow2(granularity))
            throw_error(errc::invalid_argument, "unibuf: block_allocator: granularity " + std::to_string(granularity) +
                                                    " is not a power of two");
        if (capacity > max_capacity)
            throw_error(errc::invalid_argument, "unibuf: block_allocator: a capacity of " + std::to_string(capacity) +
                                                    " bytes exceeds max_capacity (" + std::to_string(max_capacity) +
                                                    " bytes)");
        capacity_ = (capacity >> gran_shift_) << gran_shift_;
        reserve(reserve_ranges);
        reset();
    }

    /// @brief Takes over `o`'s ranges; `o` is left empty (capacity 0: every allocation fails
    /// with `too_large`, the statistics are zero, `check()` passes).
    block_allocator(block_allocator&& o) noexcept { take_from(o); }
    /// @brief Drops this allocator's ranges and takes over `o`'s; `o` is left empty as above.
    block_allocator& operator=(block_allocator&& o) noexcept {
        if (this != &o) take_from(o);
        return *this;
    }
    block_allocator(const block_allocator&) = default;
    block_allocator& operator=(const block_allocator&) = default;
    ~block_allocator() = default;

    /// @brief Reserves bookkeeping for `ranges` live ranges (each needs at most two nodes),
    /// capped at the number of granules of the block (no more ranges can ever be live).
    /// @throws std::bad_alloc
    void reserve(std::size_t ranges) {
        const std::uint64_t most = capacity_ >> gran_shift_;
        const std::uint64_t n = ranges < most ? ranges : most;  // <= 2^56: 2 * n + 1 cannot wrap
        nodes_.reserve(static_cast<std::size_t>(2 * n + 1));
    }

    /// @brief Frees every range at once: one free block of the whole capacity again.
    void reset() noexcept {
        nodes_.clear();
        spare_ = invalid_id;
        fl_map_ = 0;
        for (auto& row : sl_map_) row = 0;
        for (auto& row : heads_)
            for (auto& h : row) h = invalid_id;
        used_ = 0;
        live_ = 0;
        free_blocks_ = 0;
        first_ = invalid_id;
        if (capacity_ == 0) return;
        first_ = new_node();  // capacity reserved in the constructor: cannot throw here
        nodes_[first_] = node{0, capacity_, invalid_id, invalid_id, invalid_id, invalid_id, true};
        insert_free(first_);
    }

    /// @brief Allocates `size` bytes at an offset aligned to `alignment` (a power of two).
    /// O(1) except in the exact-fit fallback (see the file comment). A failed call changes nothing.
    /// @throws std::bad_alloc only when bookkeeping must grow past what was reserved
    [[nodiscard]] block_result allocate(std::uint64_t size, std::uint64_t alignment = 1) {
        block_result r;
        r.requested = size;
        const std::uint32_t id = find(size, alignment, r);
        if (id == invalid_id) return r;
        // Two spare nodes before any change: the split below cannot fail half-way.
        if (count_spares() + (nodes_.capacity() - nodes_.size()) < 2) nodes_.reserve(nodes_.capacity() * 2 + 4);
        r.range = take(id, units_of(size), alignment);
        r.status = block_status::ok;
        return r;
    }

    /// @brief True when `allocate(size, alignment)` would succeed now (nothing changes).
    [[nodiscard]] bool can_allocate(std::uint64_t size, std::uint64_t alignment = 1) const noexcept {
        block_result r;
        return find(size, alignment, r) != invalid_id;
    }

    /// @brief Returns range `id` and merges it with free neighbours. O(1). An `id` that names no
    /// allocated range (released already, or of an allocator since moved from) is a programming
    /// error: asserted, and ignored where assertions are off.
    void release(std::uint32_t id) noexcept {
        if (!allocated(id)) {
            UNIBUF_ASSERT(false, "block_allocator::release of a range that is not allocated");
            return;
        }
        used_ -= nodes_[id].size;
        --live_;
        std::uint32_t cur = id;
        const std::uint32_t prev = nodes_[cur].prev_phys;
        if (prev != invalid_id && nodes_[prev].free) {
            remove_free(prev);
            absorb_next(prev);  // prev swallows cur
            cur = prev;
        }
        const std::uint32_t next = nodes_[cur].next_phys;
        if (next != invalid_id && nodes_[next].free) {
            remove_free(next);
            absorb_next(cur);
        }
        nodes_[cur].free = true;
        insert_free(cur);
    }

    /// @brief Bytes reserved by range `id` (0 when `id` names no allocated range, e.g. on an
    /// allocator moved from).
    [[nodiscard]] std::uint64_t size_of(std::uint32_t id) const noexcept { return allocated(id) ? nodes_[id].size : 0; }
    /// @brief Offset of range `id` (0 when `id` names no allocated range).
    [[nodiscard]] std::uint64_t offset_of(std::uint32_t id) const noexcept {
        return allocated(id) ? nodes_[id].offset : 0;
    }

    // ---- statistics ---------------------------------------------------------------------------

    /// @brief Bytes managed (the constructor's capacity rounded down to the granularity).
    [[nodiscard]] std::uint64_t capacity() const noexcept { return capacity_; }
    /// @brief Offset/size granule in bytes.
    [[nodiscard]] std::uint64_t granularity() const noexcept { return std::uint64_t{1} << gran_shift_; }
    /// @brief Bytes held by live ranges (rounded sizes).
    [[nodiscard]] std::uint64_t used_bytes() const noexcept { return used_; }
    /// @brief Bytes not held by any range.
    [[nodiscard]] std::uint64_t free_bytes() const noexcept { return capacity_ - used_; }
    /// @brief Number of live ranges.
    [[nodiscard]] std::size_t live_ranges() const noexcept { return live_; }
    /// @brief Number of free blocks (1 when nothing is allocated: fully coalesced).
    [[nodiscard]] std::size_t free_blocks() const noexcept { return free_blocks_; }
    /// @brief Size of the largest free contiguous range (scans one size class: cheap).
    [[nodiscard]] std::uint64_t largest_free() const noexcept {
        if (fl_map_ == 0) return 0;
        const unsigned fl = 63u - static_cast<unsigned>(std::countl_zero(fl_map_));
        const unsigned sl = 31u - static_cast<unsigned>(std::countl_zero(sl_map_[fl]));
        std::uint64_t best = 0;
        for (std::uint32_t i = heads_[fl][sl]; i != invalid_id; i = nodes_[i].next_free)
            best = nodes_[i].size > best ? nodes_[i].size : best;
        return best;
    }
    /// @brief External fragmentation in [0, 1]: `1 - largest_free / free_bytes` (0 when one free
    /// range holds all free bytes, or nothing is free).
    [[nodiscard]] double fragmentation() const noexcept {
        const std::uint64_t f = free_bytes();
        return f == 0 ? 0.0 : 1.0 - static_cast<double>(largest_free()) / static_cast<double>(f);
    }

    /// @brief Calls `f(offset, size, is_free)` for every block in address order.
    template <class F>
    void for_each_block(F&& f) const {
        for (std::uint32_t i = first_; i != invalid_id; i = nodes_[i].next_phys)
            f(nodes_[i].offset, nodes_[i].size, nodes_[i].free);
    }

    /// @brief Checks every invariant (tiling, coalescing, list/bitmap consistency, counters).
    /// @return an empty string when they hold, else the first violation in words (for tests)
    [[nodiscard]] std::string check() const {
        std::uint64_t at = 0, used = 0;
        std::size_t live = 0, nfree = 0;
        bool prev_free = false;
        std::uint32_t prev = invalid_id;
        for (std::uint32_t i = first_; i != invalid_id; i = nodes_[i].next_phys) {
            const node& n = nodes_[i];
            if (!n.live) return "dead node in the physical chain";
            if (n.prev_phys != prev) return "broken prev_phys link at offset " + std::to_string(n.offset);
            if (n.offset != at) return "gap or overlap at offset " + std::to_string(at);
            if (n.size == 0 || (n.size & (granularity() - 1)) != 0) return "bad block size at " + std::to_string(at);
            if (n.free && prev_free) return "two adjacent free blocks at " + std::to_string(at) + " (not coalesced)";
            if (n.free) {
                ++nfree;
                unsigned fl = 0, sl = 0;
                map_insert(n.size >> gran_shift_, fl, sl);
                bool found = false;
                for (std::uint32_t j = heads_[fl][sl]; j != invalid_id; j = nodes_[j].next_free) found |= (j == i);
                if (!found) return "free block at " + std::to_string(at) + " missing from its size class";
            } else {
                used += n.size;
                ++live;
            }
            prev_free = n.free;
            prev = i;
            at += n.size;
        }
        if (at != capacity_) return "blocks cover " + std::to_string(at) + " of " + std::to_string(capacity_) + " bytes";
        if (used != used_) return "used byte counter is off";
        if (live != live_) return "live range counter is off";
        if (nfree != free_blocks_) return "free block counter is off";
        std::size_t listed = 0;
        for (unsigned fl = 0; fl < fl_count; ++fl) {
            if (((fl_map_ >> fl) & 1u) != (sl_map_[fl] != 0 ? 1u : 0u)) return "first-level bitmap inconsistent";
            for (unsigned sl = 0; sl < sl_count; ++sl) {
                const bool has = heads_[fl][sl] != invalid_id;
                if (((sl_map_[fl] >> sl) & 1u) != (has ? 1u : 0u)) return "second-level bitmap inconsistent";
                std::uint32_t p = invalid_id;
                for (std::uint32_t j = heads_[fl][sl]; j != invalid_id; j = nodes_[j].next_free) {
                    if (!nodes_[j].free) return "used block in a free list";
                    if (nodes_[j].prev_free != p) return "broken free-list link";
                    p = j;
                    ++listed;
                }
            }
        }
        if (listed != free_blocks_) return "free lists hold a different number of blocks than the chain";
        return {};
    }

private:
    [[nodiscard]] bool allocated(std::uint32_t id) const noexcept {
        return id < nodes_.size() && nodes_[id].live && !nodes_[id].free;
    }

    // std::has_single_bit becomes a libgcc popcount call without -mpopcnt; this is two instructions.
    static constexpr bool is_pow2(std::uint64_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }

    static constexpr unsigned sl_log2 = 5;
    static constexpr unsigned sl_count = 1u << sl_log2;
    static constexpr unsigned fl_count = 64 - sl_log2;

    struct node {
        std::uint64_t offset = 0;
        std::uint64_t size = 0;
        std::uint32_t prev_phys = invalid_id;  // boundary tags: physical neighbours
        std::uint32_t next_phys = invalid_id;
        std::uint32_t prev_free = invalid_id;  // segregated free list (or spare-node chain)
        std::uint32_t next_free = invalid_id;
        bool free = true;
        bool live = true;  // false: the node is on the spare chain
    };

    [[nodiscard]] std::uint64_t units_of(std::uint64_t bytes) const noexcept {
        return (bytes >> gran_shift_) + ((bytes & (granularity() - 1)) != 0 ? 1 : 0);
    }

    // Size class of a free block of `u` granules.
    static void map_insert(std::uint64_t u, unsigned& fl, unsigned& sl) noexcept {
        if (u < sl_count) {
            fl = 0;
            sl = static_cast<unsigned>(u);
        } else {
            const unsigned t = 63u - static_cast<unsigned>(std::countl_zero(u));
            fl = t - sl_log2 + 1;
            sl = static_cast<unsigned>(u >> (t - sl_log2)) - sl_count;
        }
    }
    // Smallest size class whose every block holds `u` granules (round up to the class boundary).
    static void map_search(std::uint64_t u, unsigned& fl, unsigned& sl) noexcept {
        if (u >= sl_count) {
            const unsigned t = 63u - static_cast<unsigned>(std::countl_zero(u));
            u += (std::uint64_t{1} << (t - sl_log2)) - 1;
        }
        map_insert(u, fl, sl);
    }

    // First non-empty list at class (fl, sl) or above; invalid_id when none.
    [[nodiscard]] std::uint32_t first_at_or_above(unsigned fl, unsigned sl) const noexcept {
        if (fl >= fl_count) return invalid_id;
        std::uint32_t slmap = sl < sl_count ? (sl_map_[fl] & (~std::uint32_t{0} << sl)) : 0;
        if (slmap == 0) {
            if (fl + 1 >= fl_count) return invalid_id;
            const std::uint64_t flmap = fl_map_ & (~std::uint64_t{0} << (fl + 1));
            if (flmap == 0) return invalid_id;
            fl = static_cast<unsigned>(std::countr_zero(flmap));
            slmap = sl_map_[fl];
        }
        return heads_[fl][static_cast<unsigned>(std::countr_zero(slmap))];
    }

    [[nodiscard]] bool fits(const node& n, std::uint64_t bytes, std::uint64_t alignment) const noexcept {
        const std::uint64_t a = alignment > granularity() ? alignment : granularity();
        const std::uint64_t off = (n.offset + a - 1) & ~(a - 1);
        return off - n.offset <= n.size && n.size - (off - n.offset) >= bytes;
    }

    // Finds a free block for the request without changing anything; fills `r` on failure.
    std::uint32_t find(std::uint64_t size, std::uint64_t alignment, block_result& r) const noexcept {
        if (size == 0 || !is_pow2(alignment)) {
            r.status = block_status::invalid_request;
            return invalid_id;
        }
        const std::uint64_t gran = granularity();
        if (size > capacity_ || units_of(size) > (capacity_ >> gran_shift_)) {
            fail(r, block_status::too_large);  // offset 0 meets any alignment: only the size can rule it out
            return invalid_id;
        }
        const std::uint64_t units = units_of(size);
        const std::uint64_t bytes = units << gran_shift_;
        const std::uint64_t pad = alignment > gran ? alignment - gran : 0;
        // Fast path: a class whose every block holds the request plus worst-case padding.
        unsigned lim_fl = fl_count, lim_sl = 0;
        if (pad <= capacity_ - bytes) {
            map_search(units + (pad >> gran_shift_), lim_fl, lim_sl);
            const std::uint32_t id = first_at_or_above(lim_fl, lim_sl);
            if (id != invalid_id) return id;
        }
        // Exact path: blocks in the classes below that may still hold it, checked one by one.
        unsigned efl = 0, esl = 0;
        map_insert(units, efl, esl);
        for (unsigned f = efl; f < fl_count && f <= lim_fl; ++f) {
            if ((fl_map_ >> f & 1u) == 0) continue;
            for (unsigned s = (f == efl ? esl : 0); s < sl_count; ++s) {
                if (f == lim_fl && s >= lim_sl) break;  // from (lim_fl, lim_sl) on, the fast path looked already
                for (std::uint32_t i = heads_[f][s]; i != invalid_id; i = nodes_[i].next_free)
                    if (fits(nodes_[i], bytes, alignment)) return i;
            }
        }
        fail(r, free_bytes() >= bytes ? block_status::fragmented : block_status::insufficient_space);
        return invalid_id;
    }

    void fail(block_result& r, block_status s) const noexcept {
        r.status = s;
        r.free_bytes = free_bytes();
        r.largest_free = largest_free();
    }

    block_range take(std::uint32_t id, std::uint64_t units, std::uint64_t alignment) noexcept {
        remove_free(id);
        const std::uint64_t a = alignment > granularity() ? alignment : granularity();
        const std::uint64_t aligned = (nodes_[id].offset + a - 1) & ~(a - 1);
        const std::uint64_t lead = aligned - nodes_[id].offset;
        if (lead != 0) {
            // The padding stays free; its left neighbour is used (free blocks are never adjacent).
            const std::uint32_t l = new_node();
            node& n = nodes_[id];
            nodes_[l] = node{n.offset, lead, n.prev_phys, id, invalid_id, invalid_id, true};
            if (n.prev_phys != invalid_id) nodes_[n.prev_phys].next_phys = l;
            else first_ = l;
            n.prev_phys = l;
            n.offset = aligned;
            n.size -= lead;
            insert_free(l);
        }
        const std::uint64_t want = units << gran_shift_;
        if (nodes_[id].size > want) {
            const std::uint32_t t = new_node();
            node& n = nodes_[id];
            nodes_[t] = node{n.offset + want, n.size - want, id, n.next_phys, invalid_id, invalid_id, true};
            if (n.next_phys != invalid_id) nodes_[n.next_phys].prev_phys = t;
            n.next_phys = t;
            n.size = want;
            insert_free(t);
        }
        nodes_[id].free = false;
        used_ += want;
        ++live_;
        return {nodes_[id].offset, want, id};
    }

    // `a` swallows its physical successor, whose node is recycled.
    void absorb_next(std::uint32_t a) noexcept {
        const std::uint32_t b = nodes_[a].next_phys;
        nodes_[a].size += nodes_[b].size;
        nodes_[a].next_phys = nodes_[b].next_phys;
        if (nodes_[b].next_phys != invalid_id) nodes_[nodes_[b].next_phys].prev_phys = a;
        recycle(b);
    }

    void insert_free(std::uint32_t i) noexcept {
        unsigned fl = 0, sl = 0;
        map_insert(nodes_[i].size >> gran_shift_, fl, sl);
        node& n = nodes_[i];
        n.free = true;
        n.prev_free = invalid_id;
        n.next_free = heads_[fl][sl];
        if (n.next_free != invalid_id) nodes_[n.next_free].prev_free = i;
        heads_[fl][sl] = i;
        sl_map_[fl] |= std::uint32_t{1} << sl;
        fl_map_ |= std::uint64_t{1} << fl;
        ++free_blocks_;
    }

    void remove_free(std::uint32_t i) noexcept {
        unsigned fl = 0, sl = 0;
        map_insert(nodes_[i].size >> gran_shift_, fl, sl);
        node& n = nodes_[i];
        if (n.prev_free != invalid_id) nodes_[n.prev_free].next_free = n.next_free;
        else heads_[fl][sl] = n.next_free;
        if (n.next_free != invalid_id) nodes_[n.next_free].prev_free = n.prev_free;
        if (heads_[fl][sl] == invalid_id) {
            sl_map_[fl] &= ~(std::uint32_t{1} << sl);
            if (sl_map_[fl] == 0) fl_map_ &= ~(std::uint64_t{1} << fl);
        }
        n.prev_free = n.next_free = invalid_id;
        --free_blocks_;
    }

    // A node from the spare chain, else a new one (capacity ensured by the caller).
    std::uint32_t new_node() noexcept {
        if (spare_ != invalid_id) {
            const std::uint32_t i = spare_;
            spare_ = nodes_[i].next_free;
            nodes_[i].live = true;
            return i;
        }
        nodes_.push_back(node{});  // never reallocates: capacity checked before any split
        return static_cast<std::uint32_t>(nodes_.size() - 1);
    }
    void recycle(std::uint32_t i) noexcept {
        nodes_[i].live = false;
        nodes_[i].free = false;
        nodes_[i].next_free = spare_;
        spare_ = i;
    }
    // Member-wise take-over; `o` becomes an allocator of capacity 0 (no nodes, no free lists).
    void take_from(block_allocator& o) noexcept {
        gran_shift_ = o.gran_shift_;
        capacity_ = std::exchange(o.capacity_, 0);
        used_ = o.used_;
        live_ = o.live_;
        free_blocks_ = o.free_blocks_;
        first_ = o.first_;
        spare_ = o.spare_;
        fl_map_ = o.fl_map_;
        for (unsigned f = 0; f < fl_count; ++f) {
            sl_map_[f] = o.sl_map_[f];
            for (unsigned i = 0; i < sl_count; ++i) heads_[f][i] = o.heads_[f][i];
        }
        nodes_ = std::move(o.nodes_);
        o.nodes_.clear();
        o.reset();  // capacity 0: no node is made, every list is empty
    }

    [[nodiscard]] std::size_t count_spares() const noexcept {
        std::size_t n = 0;
        for (std::uint32_t i = spare_; i != invalid_id && n < 2; i = nodes_[i].next_free) ++n;
        return n;
    }

    unsigned gran_shift_ = 0;
    std::uint64_t capacity_ = 0;
    std::uint64_t used_ = 0;
    std::size_t live_ = 0;
    std::size_t free_blocks_ = 0;
    std::uint32_t first_ = invalid_id;
    std::uint32_t spare_ = invalid_id;
    std::uint64_t fl_map_ = 0;
    std::uint32_t sl_map_[fl_count] = {};
    std::uint32_t heads_[fl_count][sl_count] = {};
    std::vector<node> nodes_;
};

} // namespace unibuf
