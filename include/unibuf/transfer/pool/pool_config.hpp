/// @file pool_config.hpp
/// @brief What a `buffer_pool` is made from and what it reports: its locking policies
/// (`pool_locking`, the `PoolLocking` concept), its sizing (`buffer_shape`, `pool_config`,
/// `pool_growth`) and its counters (`pool_stats`). No backend, no buffer: plain values.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string_view>
#include <vector>

namespace unibuf {

/// @brief Thread-safety policies of a pool.
namespace pool_locking {

/// @brief No locking: one thread at a time uses the pool and destroys its buffers. Cost: none.
struct unlocked {
    static constexpr bool thread_safe = false;                          ///< acquire/release on one thread only
    static constexpr std::string_view name = "pool_locking::unlocked";  ///< for messages
    /// @brief Nothing.
    void lock() noexcept {}
    /// @brief Nothing.
    void unlock() noexcept {}
};

/// @brief A mutex around acquire, release and statistics: any thread may acquire and destroy
/// buffers. Cost: one uncontended lock per acquire and per release (tens of ns); contended
/// pools serialize, so prefer one pool per thread where the work allows it.
struct mutex {
    static constexpr bool thread_safe = true;                          ///< acquire/release on any thread
    static constexpr std::string_view name = "pool_locking::mutex";   ///< for messages
    /// @brief Takes the mutex.
    /// @throws std::system_error when the mutex cannot be taken (as `std::mutex::lock`)
    void lock() { m_.lock(); }
    /// @brief Releases the mutex.
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
    std::uint64_t max_elements = 0;   ///< the most elements the buffer holds
    std::uint64_t element_size = 1;   ///< bytes of one element (`sizeof`)
    std::uint64_t element_align = 1;  ///< alignment of one element (`alignof`; a power of two)
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
    std::uint64_t abandoned = 0;              ///< buffers destroyed while their device work had not completed in their wait bound: their ranges stay taken, never reused (freed with the pool); not cleared by `reset_stats`
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

/// @brief What a pool's `Locking` argument must provide (rule R14): default construction,
/// `lock()`, `unlock()` and `static constexpr bool thread_safe`, as `pool_locking::unlocked` and
/// `pool_locking::mutex` do.
template <class L>
concept PoolLocking = std::default_initializable<L> && requires(L& l) {
    l.lock();
    l.unlock();
    { L::thread_safe } -> std::convertible_to<bool>;
};

} // namespace unibuf
