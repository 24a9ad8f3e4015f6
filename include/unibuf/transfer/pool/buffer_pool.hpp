/// @file buffer_pool.hpp
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

#include "pool_config.hpp"
#include "pool_core.hpp"
#include "../block_allocator.hpp"
#include "../../buffer/basic_buffer.hpp"
#include "../../buffer/concepts.hpp"
#include "../../core/detail/meta.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"
#include "../../policy/policy_set.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace unibuf {

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
                                        slice_release{&core::release, core_, handle, &core::abandon});
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
                                        slice_release{&core::release, c, handle, &core::abandon});
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
