/// @file upload_stream.hpp
/// @brief `upload_stream<B>`: many small host→device uploads through one persistent, write-only,
/// write-combined buffer used as a ring, with one fence per ring *segment* instead of one per upload.
///
/// The buffer is split into `S` segments of equal size. `push<T>(n)` reserves `n` elements in the
/// current segment (the offset aligned to the backend's `min_storage_offset_alignment` and to
/// `alignof(T)`) and hands back a `stream_block<T, ...>`: a write-only view of the range plus its
/// allocation and byte offset, bindable to a dispatch like a buffer (`bind(block, usage::read)`).
/// When a request no longer fits, the segment is *closed* with one fence that covers all device
/// work submitted so far (the backend's `submitted_fence()`, see `FenceSource`), and the next
/// segment is opened. Opening a segment waits (bounded) for the fence it was closed with on the
/// previous lap — the only wait there is, and it blocks only when the device is a whole ring behind.
///
/// | memory the backend gave | what makes host writes visible |
/// |---|---|
/// | zero-copy and coherent (GL `GL_MAP_COHERENT_BIT`, Vulkan `HOST_COHERENT`) | nothing |
/// | non-coherent, staged or shadow (GL forced traditional path) | the block's `flush()`, done by `dispatch` before each device use |
///
/// Rules (checked where cheap):
/// - the ring lives in host-mapped memory: `placement::device` (no mapping) and policy arguments
///   of the wrong category are rejected at compile time with one error (rule R18);
/// - a request larger than a segment is an error (`errc::capacity_exceeded`, naming the element
///   count, the element size and the segment); so is one whose byte size passes 2^64; nothing is
///   ever truncated, and a rejected request changes nothing; a zero-element request is
///   `errc::invalid_argument`;
/// - device work that reads a block must be submitted before the ring comes back to its segment;
///   work submitted after the segment closed is reported through the block's `after_device_use`
///   (`dispatch` does it), which moves the segment's fence forward; a block used after its segment
///   was reopened throws `errc::invalid_argument` at `before_device_use`;
/// - one thread pushes (the stream has no lock); on the OpenGL backend, the context thread;
/// - the stream is neither copyable nor movable (blocks point to it); destroying it waits (bounded)
///   for all device work that may still read it.
///
/// @code
/// unibuf::gl_backend gpu;
/// unibuf::upload_stream<unibuf::gl_backend> up(gpu, 4 << 20, 3);   // 3 segments of 4 MiB
/// for (const auto& item : items) {
///     auto blk = up.upload(std::span<const float>(item));            // or push<float>(n) + view()
///     unibuf::dispatch(gpu, kernel, {groups}, {}, unibuf::bind(blk, unibuf::usage::read), unibuf::bind(out));
/// }
/// @endcode
#pragma once

#include "../core/vocabulary.hpp"
#include "../buffer/basic_buffer.hpp"
#include "../buffer/concepts.hpp"
#include "../core/detail/meta.hpp"
#include "../buffer/dispatch.hpp"
#include "../core/error.hpp"
#include "../policy/policies.hpp"
#include "../buffer/view.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace unibuf {

/// @brief What an `upload_stream` did so far.
struct upload_stream_stats {
    std::uint64_t pushes = 0;           ///< blocks handed out
    std::uint64_t bytes = 0;            ///< bytes handed out (alignment padding not counted)
    std::uint64_t segments_closed = 0;  ///< fences inserted, one per closed segment
    std::uint64_t blocked_waits = 0;    ///< segment openings that found the device still reading it and waited
    std::chrono::nanoseconds blocked_time{0};  ///< time spent in those waits
};

namespace detail {

/// True unless `P` is a placement policy without a host pointer (`placement::device`): the
/// stream's R18 check, written so that a non-policy argument reaches its own message instead.
template <class P>
[[nodiscard]] consteval bool stream_placement_mapped() {
    if constexpr (PlacementPolicy<P>) {
        return P::host_pointer;
    } else {
        return true;
    }
}

/// `lcm(a, b)` of two alignments (> 0), or 0 when it does not fit in 64 bits.
[[nodiscard]] constexpr std::uint64_t stream_lcm(std::uint64_t a, std::uint64_t b) noexcept {
    std::uint64_t l = 0;
    return checked_mul(a / std::gcd(a, b), b, l) ? l : 0;
}


} // namespace detail

template <FenceSource B, class Coherence, class Placement>
class upload_stream;

/// @brief One range handed out by `upload_stream::push`: write it through `view()`, then bind it
/// to device work (`bind(block, usage::read)`) or use `allocation()`/`byte_offset()` with the
/// backend's own calls. A small value type; it does not own the memory, the stream does.
///
/// It models `Buffer` and `DeviceBindable` (access::write_only, sync::none), so `dispatch` flushes
/// it where the memory needs that and reports the dispatch's fence back to the stream.
///
/// An empty block (default-constructed) holds no range: `size()`, `size_bytes()`, `byte_offset()`
/// and `segment()` are 0, `valid()` is false, `view()` has no elements, `data()` is null,
/// `after_device_use` does nothing, and `allocation()`, `range()`, `assign`, `flush` and
/// `before_device_use` (so binding it to a dispatch) throw `errc::invalid_argument`.
/// The stream must outlive its blocks.
/// @tparam T element type
/// @tparam Stream the `upload_stream` it came from
template <class T, class Stream>
class stream_block {
public:
    using value_type = T;
    using backend_type = typename Stream::backend_type;
    using allocation_type = typename backend_type::allocation;
    using fence_type = typename backend_type::fence;
    using access_policy = access::write_only;
    using coherence_policy = typename Stream::coherence_policy;
    using placement_policy = typename Stream::placement_policy;
    using sync_policy = sync::none;

    /// @brief An empty block (holds no range).
    stream_block() = default;

    /// @brief Number of elements (0 for an empty block).
    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    /// @brief Size in bytes (0 for an empty block; the stream checked at the push that it fits).
    [[nodiscard]] std::uint64_t size_bytes() const noexcept { return static_cast<std::uint64_t>(count_) * sizeof(T); }
    /// @brief Byte offset of the block inside `allocation()` (aligned for a storage-buffer
    /// binding; 0 for an empty block).
    [[nodiscard]] std::uint64_t byte_offset() const noexcept { return offset_; }
    /// @brief True when the block holds no range (default-constructed).
    [[nodiscard]] bool empty() const noexcept { return stream_ == nullptr; }
    /// @brief The stream's allocation (GL: `allocation().buffer()` is the buffer name to bind).
    /// @throws std::system_error invalid_argument for an empty block
    [[nodiscard]] allocation_type& allocation() const {
        require_stream("allocation()");
        return stream_->allocation();
    }
    /// @brief Index of the segment the block lies in (0 for an empty block).
    [[nodiscard]] std::size_t segment() const noexcept { return segment_; }
    /// @brief False once the stream reopened the block's segment (its bytes may be overwritten),
    /// and for an empty block.
    [[nodiscard]] bool valid() const noexcept { return stream_ != nullptr && stream_->current(segment_, opening_); }

    /// @brief The host view: elements can be assigned, never read (write-combined memory). No
    /// elements for an empty block.
    [[nodiscard]] write_only_view<T> view() const noexcept { return write_only_view<T>(data(), count_); }
    /// @brief Raw destination pointer, for memcpy-like producers (null for an empty block). Do not
    /// read through it.
    [[nodiscard]] T* data() const noexcept {
        return stream_ == nullptr ? nullptr : reinterpret_cast<T*>(stream_->host_data() + offset_);
    }
    /// @brief Copies `src` to elements `[offset, offset + src.size())`.
    /// @throws std::system_error out_of_range naming the request and the block size,
    ///         invalid_argument for an empty block
    void assign(std::span<const T> src, std::size_t offset = 0) const {
        require_stream("assign");
        if (offset > count_ || src.size() > count_ - offset)
            throw_error(errc::out_of_range, "unibuf: stream_block::assign of " + std::to_string(src.size()) +
                                                " elements at offset " + std::to_string(offset) + " into a block of " +
                                                std::to_string(count_) + " elements");
        view().assign(src, offset);
    }

    /// @brief The range as a backend sees a binding.
    /// @throws std::system_error invalid_argument for an empty block
    [[nodiscard]] bound_range<backend_type> range(usage u = usage::read) const {
        return {&allocation(), offset_, size_bytes(), u};
    }

    /// @brief Makes the host writes visible to device work submitted after this call: nothing for
    /// coherent zero-copy memory, else the backend's flush of the block's bytes (a copy on staged
    /// / shadow memory). `dispatch` calls it for you (through `before_device_use`).
    /// @returns the fence after which the device sees the writes (complete when nothing was needed)
    /// @throws std::system_error invalid_argument (an empty block, or one whose segment was
    ///         reopened), and the backend's errors
    fence_type flush() {
        check_valid("flush");
        return stream_->flush_range(offset_, size_bytes());
    }

    /// @brief Device-use protocol (called by `dispatch`): flushes where needed.
    /// @throws std::system_error invalid_argument when the block is empty or its segment was
    ///         reopened since the push
    fence_type before_device_use(usage u) {
        (void)u;
        check_valid("device use");
        return stream_->flush_range(offset_, size_bytes());
    }
    /// @brief Device-use protocol: device work with fence `f` (submitted now) reads the block, so
    /// its segment is not reopened before `f` completes. Call it for work you submit yourself
    /// after the block's segment may have closed. Nothing for an empty block.
    void after_device_use(const fence_type& f, usage u) noexcept {
        (void)u;
        if (stream_ != nullptr) stream_->note_use(segment_, opening_, f);
    }

private:
    template <FenceSource, class, class>
    friend class upload_stream;
    stream_block(Stream* s, std::uint64_t offset, std::size_t count, std::size_t segment, std::uint64_t opening) noexcept
        : stream_(s), offset_(offset), count_(count), segment_(segment), opening_(opening) {}

    void require_stream(const char* what) const {
        if (stream_ == nullptr)
            throw_error(errc::invalid_argument,
                        std::string("unibuf: stream_block: ") + what + " of an empty block (it holds no range)");
    }

    void check_valid(const char* what) const {
        require_stream(what);
        if (!valid())
            throw_error(errc::invalid_argument,
                        std::string("unibuf: stream_block: ") + what + " of a block of segment " +
                            std::to_string(segment_) + " after the upload_stream reopened that segment (its " +
                            std::to_string(stream_->segment_count()) + " segments of " +
                            std::to_string(stream_->segment_bytes()) +
                            " bytes came round): submit the work that reads a block before the ring wraps");
    }

    Stream* stream_ = nullptr;
    std::uint64_t offset_ = 0;
    std::size_t count_ = 0;
    std::size_t segment_ = 0;
    std::uint64_t opening_ = 0;
};

/// @brief A streaming upload ring over one persistent write-only buffer (see the file comment).
///
/// @tparam B backend (`Backend`)
/// @tparam Coherence `coherence::write_combined` (default: streaming stores, never read back) or
///         another coherence policy (`explicit_flush`: blocks are flushed before device use)
/// @tparam Placement where the ring lives; it must have a host pointer (not `placement::device`)
///
/// Neither copyable nor movable (its blocks point to it), so a stream is never empty.
template <FenceSource B, class Coherence = coherence::write_combined, class Placement = placement::automatic>
class upload_stream {
    // Rule R18, one message per mistake; the buffer type below is made of valid policies either
    // way, so that a rejected argument is the only error.
    static_assert(CoherencePolicy<Coherence>,
                  "unibuf: upload_stream's second argument must be a coherence policy (coherence::write_combined, "
                  "coherence::explicit_flush or coherence::coherent) (rule R18)");
    static_assert(PlacementPolicy<Placement>,
                  "unibuf: upload_stream's third argument must be a placement policy with a host mapping "
                  "(placement::automatic, placement::host or placement::device_mapped) (rule R18)");
    static_assert(detail::stream_placement_mapped<Placement>(),
                  "unibuf: upload_stream writes through a host mapping; placement::device has none: use "
                  "placement::automatic, placement::host or placement::device_mapped (rule R18)");
    using valid_coherence = std::conditional_t<CoherencePolicy<Coherence>, Coherence, coherence::write_combined>;
    using valid_placement = std::conditional_t<PlacementPolicy<Placement> && detail::stream_placement_mapped<Placement>(),
                                               Placement, placement::automatic>;

public:
    using backend_type = B;
    using fence_type = typename B::fence;
    using allocation_type = typename B::allocation;
    using coherence_policy = valid_coherence;
    using placement_policy = valid_placement;
    /// @brief The block type `push<T>` returns.
    template <class T>
    using block = stream_block<T, upload_stream>;
    /// @brief The underlying buffer: write-only bytes, no automatic synchronization (the stream fences).
    using buffer_type = basic_buffer<std::byte, B, access::write_only, valid_coherence, valid_placement, sync::none>;

    /// @brief Allocates `segments` segments of at least `segment_bytes` bytes each (rounded up to
    /// the backend's storage-offset alignment and, for memory that needs flushes, its flush atom).
    /// @throws std::system_error invalid_argument (zero segments or bytes; alignments whose least
    /// common multiple passes 2^64), capacity_exceeded (the rounded segment, or all segments
    /// together, pass 2^64 bytes or the address space: the message names the segment count and
    /// size), and the allocation's errors (out_of_memory, mapping_failed, wrong_thread, ...)
    upload_stream(B& backend, std::uint64_t segment_bytes, std::size_t segments = 3)
        : backend_(&backend), base_align_(base_alignment(backend)),
          segment_bytes_(checked_segment_bytes(segment_bytes, segments, base_align_)),
          buffer_(backend, checked_total(segment_bytes_, segments)), segments_(segments) {
        const allocation_report& r = buffer_.report();
        needs_flush_ = !(r.zero_copy && r.host_coherent);
        segments_[0].opening = ++openings_;
    }

    upload_stream(const upload_stream&) = delete;  // blocks point to their stream
    upload_stream& operator=(const upload_stream&) = delete;
    upload_stream(upload_stream&&) = delete;
    upload_stream& operator=(upload_stream&&) = delete;

    /// @brief Waits (bounded by the wait timeout) for all device work that may read the ring.
    ~upload_stream() { wait_all_noexcept(); }

    // ---- pushing ----------------------------------------------------------------------------

    /// @brief Reserves `count` elements of `T`, waiting at most `timeout` when the ring must come
    /// back to a segment the device still reads.
    /// @throws std::system_error capacity_exceeded (larger than a segment, or `count * sizeof(T)`
    /// past 2^64: the message names the count and the element size; the stream is unchanged),
    /// invalid_argument (zero elements), timeout (naming the segment waited for and the bound),
    /// and the backend's errors
    template <class T>
    [[nodiscard]] block<T> push(std::size_t count, std::chrono::nanoseconds timeout) {
        static_assert(BufferElement<T>, "unibuf: upload_stream::push<T>: T must be trivially copyable (rule R1)");
        std::uint64_t offset = 0;
        std::string why;
        const std::error_code ec = reserve(count, sizeof(T), alignof(T), timeout, offset, &why);
        if (ec) throw_error(static_cast<errc>(ec.value()), why);
        return block<T>(this, offset, count, current_, segments_[current_].opening);
    }
    /// @brief `push` with the stream's wait timeout (`set_wait_timeout`, default 10 s).
    template <class T>
    [[nodiscard]] block<T> push(std::size_t count) {
        return push<T>(count, wait_timeout_);
    }

    /// @brief Pushes `src.size()` elements and copies `src` into them.
    /// @throws as `push`
    template <class T>
    [[nodiscard]] block<T> upload(std::span<const T> src) {
        static_assert(BufferElement<T>, "unibuf: upload_stream::upload<T>: T must be trivially copyable (rule R1)");
        block<T> b{};
        if constexpr (BufferElement<T>) {
            b = push<T>(src.size());
            b.view().assign(src);
        }
        return b;
    }

    /// @brief Non-throwing `push` that waits at most `timeout`: an empty optional and `ec` set
    /// (capacity_exceeded, invalid_argument, timeout, or a backend error) on failure; the stream
    /// is then unchanged except that a full segment may have been closed.
    template <class T>
    [[nodiscard]] std::optional<block<T>> try_push_for(std::size_t count, std::chrono::nanoseconds timeout,
                                                       std::error_code& ec) noexcept {
        static_assert(BufferElement<T>, "unibuf: upload_stream::try_push<T>: T must be trivially copyable (rule R1)");
        std::uint64_t offset = 0;
        ec = reserve(count, sizeof(T), alignof(T), timeout, offset, nullptr);
        if (ec) return std::nullopt;
        return block<T>(this, offset, count, current_, segments_[current_].opening);
    }
    /// @brief Non-throwing `push` that never waits: `errc::timeout` when the next segment is still
    /// read by the device.
    template <class T>
    [[nodiscard]] std::optional<block<T>> try_push(std::size_t count, std::error_code& ec) noexcept {
        return try_push_for<T>(count, std::chrono::nanoseconds{0}, ec);
    }

    /// @brief Closes the current segment now (if anything was pushed into it) with a fence after
    /// all submitted work, so that the next push starts the next segment. Returns that fence
    /// (complete when nothing was closed).
    /// @throws the backend's errors (GL: wrong_thread)
    fence_type close_segment() {
        if (head_ == 0 || closed_) return closed_ ? segments_[current_].fence : fence_type{};
        close_current();
        return segments_[current_].fence;
    }

    /// @brief Waits (bounded) until no device work may read the ring: closes the current segment
    /// and waits for every segment's fence.
    /// @throws std::system_error timeout naming the segment, and the backend's errors
    void wait_idle() {
        (void)close_segment();
        for (std::size_t i = 0; i < segments_.size(); ++i) {
            std::string why;
            const std::error_code ec = wait_segment(i, wait_timeout_, &why);
            if (ec) throw_error(static_cast<errc>(ec.value()), why);
        }
    }

    // ---- observers --------------------------------------------------------------------------

    /// @brief Bytes of each segment (the largest request).
    [[nodiscard]] std::uint64_t segment_bytes() const noexcept { return segment_bytes_; }
    /// @brief Number of segments.
    [[nodiscard]] std::size_t segment_count() const noexcept { return segments_.size(); }
    /// @brief Index of the segment the next push goes to (unless it does not fit).
    [[nodiscard]] std::size_t current_segment() const noexcept { return current_; }
    /// @brief Bytes used in the current segment (padding included).
    [[nodiscard]] std::uint64_t segment_used() const noexcept { return head_; }
    /// @brief The fence segment `i` waits on before it is reopened (complete when none).
    /// @throws std::system_error out_of_range when `i` is not a segment index
    [[nodiscard]] const fence_type& segment_fence(std::size_t i) const {
        if (i >= segments_.size())
            throw_error(errc::out_of_range, "unibuf: upload_stream::segment_fence(" + std::to_string(i) + ") of a ring of " +
                                                std::to_string(segments_.size()) + " segments");
        return segments_[i].fence;
    }
    /// @brief Offset alignment of every block (before `alignof(T)`): the least common multiple of
    /// the backend's storage-offset alignment and its flush atom (segments are multiples of it).
    [[nodiscard]] std::uint64_t alignment() const noexcept { return base_align_; }
    /// @brief True when blocks are flushed before device use (non-coherent, staged or shadow memory).
    [[nodiscard]] bool needs_flush() const noexcept { return needs_flush_; }
    /// @brief Counters since construction.
    [[nodiscard]] const upload_stream_stats& stats() const noexcept { return stats_; }
    /// @brief The underlying buffer (its `report()` says what memory the backend chose).
    [[nodiscard]] const buffer_type& buffer() const noexcept { return buffer_; }
    /// @brief The allocation blocks live in.
    [[nodiscard]] allocation_type& allocation() const noexcept { return buffer_.allocation(); }
    /// @brief The backend.
    [[nodiscard]] B& backend() const noexcept { return *backend_; }
    /// @brief Bound on the waits `push` and `wait_idle` perform (default 10 s).
    void set_wait_timeout(std::chrono::nanoseconds t) noexcept { wait_timeout_ = t; }

private:
    template <class, class>
    friend class stream_block;

    struct segment_state {
        fence_type fence{};        ///< device work that may read the segment (set when closed)
        std::uint64_t opening = 0; ///< which opening of the ring (1, 2, ...) the segment holds now
    };

    // Storage-offset alignment, and the flush atom so that no flush rounds into a neighbouring block.
    static std::uint64_t base_alignment(B& backend) {
        const device_limits l = backend.limits();
        const std::uint64_t storage = std::max<std::uint64_t>(1, l.min_storage_offset_alignment);
        const std::uint64_t atom = std::max<std::uint64_t>(1, l.non_coherent_atom);
        const std::uint64_t a = detail::stream_lcm(storage, atom);
        if (a == 0)
            throw_error(errc::invalid_argument, "unibuf: upload_stream: the backend's storage-offset alignment " +
                                                    std::to_string(storage) + " and flush atom " + std::to_string(atom) +
                                                    " have no common multiple below 2^64");
        return a;
    }
    // `bytes` rounded up to `align`, checked: zero sizes are invalid, a rounding past 2^64 too large.
    static std::uint64_t checked_segment_bytes(std::uint64_t bytes, std::size_t segments, std::uint64_t align) {
        if (segments == 0 || bytes == 0)
            throw_error(errc::invalid_argument, "unibuf: upload_stream of " + std::to_string(segments) +
                                                    " segments of " + std::to_string(bytes) +
                                                    " bytes: both must be at least 1");
        std::uint64_t rounded = 0;
        if (!detail::checked_align_up(bytes, align, rounded))
            throw_error(errc::capacity_exceeded, "unibuf: upload_stream of " + std::to_string(segments) +
                                                     " segments of " + std::to_string(bytes) +
                                                     " bytes: a segment rounded up to the alignment " +
                                                     std::to_string(align) + " passes 2^64 bytes");
        return rounded;
    }
    static std::size_t checked_total(std::uint64_t segment_bytes, std::size_t segments) {
        if (segment_bytes > std::numeric_limits<std::size_t>::max() / segments)
            throw_error(errc::capacity_exceeded, "unibuf: upload_stream of " + std::to_string(segments) +
                                                     " segments of " + std::to_string(segment_bytes) +
                                                     " bytes: the ring passes the largest size (" +
                                                     std::to_string(std::numeric_limits<std::size_t>::max()) + " bytes)");
        return static_cast<std::size_t>(segment_bytes * segments);
    }

    [[nodiscard]] std::byte* host_data() const noexcept { return buffer_.allocation().host_data(); }
    [[nodiscard]] bool current(std::size_t seg, std::uint64_t opening) const noexcept {
        return segments_[seg].opening == opening;
    }

    fence_type flush_range(std::uint64_t offset, std::uint64_t n) {
        if (!needs_flush_) return fence_type{};
        return buffer_.flush(static_cast<std::size_t>(offset), static_cast<std::size_t>(n));
    }

    void note_use(std::size_t seg, std::uint64_t opening, const fence_type& f) noexcept {
        // Work on the open segment is covered by the fence that will close it; a closed segment's
        // fence moves to `f`, work submitted after the close (fences complete in submission order).
        if ((seg != current_ || closed_) && segments_[seg].opening == opening) segments_[seg].fence = f;
    }

    // Closes the current segment with a fence after all submitted work.
    void close_current() {
        fence_type f = backend_->submitted_fence();
        // One poll starts it on its way (GL: glClientWaitSync with GL_SYNC_FLUSH_COMMANDS_BIT
        // flushes the fence to the GPU), so it signals in the background before the ring comes round.
        (void)backend_->is_complete(f);
        segments_[current_].fence = std::move(f);
        ++stats_.segments_closed;
        head_ = segment_bytes_;  // nothing more goes into it
        closed_ = true;
    }

    // Waits (bounded) for segment i's fence; counts a wait that blocked.
    std::error_code wait_segment(std::size_t i, std::chrono::nanoseconds timeout, std::string* why) {
        const fence_type& f = segments_[i].fence;
        if (backend_->is_complete(f)) return {};
        if (timeout.count() <= 0) {
            if (why != nullptr) *why = timeout_message(i, timeout);
            return errc::timeout;
        }
        const auto t0 = std::chrono::steady_clock::now();
        const bool done = backend_->wait(f, timeout);
        ++stats_.blocked_waits;
        stats_.blocked_time += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
        if (done) return {};
        if (why != nullptr) *why = timeout_message(i, timeout);
        return errc::timeout;
    }

    std::string timeout_message(std::size_t i, std::chrono::nanoseconds timeout) const {
        return "unibuf: upload_stream: segment " + std::to_string(i) + " of " + std::to_string(segments_.size()) +
               " (" + std::to_string(segment_bytes_) + " bytes) is still read by device work after " +
               detail::ms_text(timeout) +
               " ms; the ring came back to it before the device finished (more segments, or larger ones, let the "
               "host run further ahead)";
    }

    // The core of push: on success `offset` is the block's byte offset in the allocation. Throws
    // only what the backend throws (push) — try_push catches that.
    std::error_code reserve(std::size_t count, std::size_t elem_size, std::size_t elem_align,
                            std::chrono::nanoseconds timeout, std::uint64_t& offset, std::string* why) noexcept {
#if UNIBUF_EXCEPTIONS
        try {
            return reserve_impl(count, elem_size, elem_align, timeout, offset, why);
        } catch (const std::system_error& e) {
            if (why != nullptr) *why = e.what();
            return e.code();
        } catch (...) {
            if (why != nullptr) *why = "unibuf: upload_stream: the backend threw an unknown exception";
            return errc::invalid_argument;
        }
#else
        return reserve_impl(count, elem_size, elem_align, timeout, offset, why);
#endif
    }

    std::error_code reserve_impl(std::size_t count, std::size_t elem_size, std::size_t elem_align,
                                 std::chrono::nanoseconds timeout, std::uint64_t& offset, std::string* why) {
        if (count == 0) {
            if (why != nullptr) *why = "unibuf: upload_stream::push of 0 elements; a block holds at least one";
            return errc::invalid_argument;
        }
        // 0: the alignment itself passes 2^64 (no block of this type can be placed).
        const std::uint64_t align = detail::stream_lcm(base_align_, static_cast<std::uint64_t>(elem_align));
        // Segments start at multiples of base_align_: an over-aligned T may need padding there.
        const std::uint64_t usable = align == 0 ? 0 : segment_bytes_ - std::min(segment_bytes_, align - base_align_);
        const bool overflow = count > std::numeric_limits<std::uint64_t>::max() / elem_size;
        const std::uint64_t bytes = overflow ? 0 : static_cast<std::uint64_t>(count) * elem_size;
        if (overflow || bytes > usable) {
            if (why != nullptr)
                *why = "unibuf: upload_stream::push of " + detail::elements_text(count, elem_size) + " (" +
                       (overflow ? std::string("more than 2^64") : std::to_string(bytes)) +
                       " bytes) does not fit in a segment of " + std::to_string(segment_bytes_) + " bytes (" +
                       (usable != segment_bytes_ ? std::to_string(usable) + " usable at alignment " + std::to_string(align) + ", " : std::string()) +
                       std::to_string(segments_.size()) + " segments); make the segments larger or split the upload";
            return errc::capacity_exceeded;
        }
        // `base + head_` and `end` lie inside the ring (its size fits in size_t); the rounding up and
        // the block's end are checked without forming a sum past the segment.
        const std::uint64_t base = current_ * segment_bytes_;
        const std::uint64_t end = base + segment_bytes_;
        std::uint64_t at = 0;
        const bool fits = detail::checked_align_up(base + head_, align, at) && at <= end && bytes <= end - at;
        if (!fits) {
            const std::size_t next = (current_ + 1) % segments_.size();
            if (!closed_) close_current();  // a failed earlier try may have closed it already
            if (const std::error_code ec = wait_segment(next, timeout, why)) return ec;
            current_ = next;
            head_ = 0;
            closed_ = false;
            segments_[next].fence = fence_type{};
            segments_[next].opening = ++openings_;
            // A fresh segment starts at a multiple of base_align_; the padding to `align` is at most
            // align - base_align_, which `usable` left room for: the block ends inside the segment.
            at = detail::align_up(next * segment_bytes_, align);
        }
        head_ = at + bytes - current_ * segment_bytes_;
        offset = at;
        ++stats_.pushes;
        stats_.bytes += bytes;
        return {};
    }

    void wait_all_noexcept() noexcept {
#if UNIBUF_EXCEPTIONS
        try {
            if (head_ != 0 && !closed_) close_current();
            for (std::size_t i = 0; i < segments_.size(); ++i) (void)wait_segment(i, wait_timeout_, nullptr);
        } catch (...) {
            // GL off the context thread, device lost: nothing more can be done in a destructor.
        }
#else
        if (head_ != 0 && !closed_) close_current();
        for (std::size_t i = 0; i < segments_.size(); ++i) (void)wait_segment(i, wait_timeout_, nullptr);
#endif
    }

    // Declaration order matters: buffer_ is constructed from the alignment fields above it.
    B* backend_;
    std::uint64_t base_align_;
    std::uint64_t segment_bytes_;
    buffer_type buffer_;
    std::vector<segment_state> segments_;
    std::size_t current_ = 0;
    std::uint64_t head_ = 0;      ///< bytes used in the current segment
    std::uint64_t openings_ = 0;  ///< segment openings so far
    bool closed_ = false;         ///< the current segment was closed (a fence covers it; no more pushes)
    bool needs_flush_ = false;
    std::chrono::nanoseconds wait_timeout_ = default_wait_timeout;
    upload_stream_stats stats_{};
};

} // namespace unibuf
