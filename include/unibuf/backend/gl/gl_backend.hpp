/// @file gl_backend.hpp
/// @brief The OpenGL backend (OpenGL 4.4, or 4.3 with `GL_ARB_buffer_storage`): persistent-mapped
/// buffer storage, GL fences, compute dispatch. Including this header gives the whole backend:
/// `gl_backend`, `gl_kernel` and the types they use.
///
/// @code
/// unibuf::egl_context ctx;                     // or your own context, current on this thread
/// unibuf::gl_backend gpu;                      // takes the context current on this thread
/// unibuf::gl_kernel saxpy(gpu, unibuf::kernels::saxpy_glsl, "saxpy");
/// unibuf::shared_buffer<float, unibuf::gl_backend> x(gpu, n), y(gpu, n);
/// x.fill(1.0f); y.fill(2.0f);
/// unibuf::dispatch(gpu, saxpy, {(n + 63) / 64}, unibuf::push_constants(params),
///                  unibuf::bind(x, unibuf::usage::read), unibuf::bind(y));
/// auto v = y.to_vector();                      // waits for the fence, reads the mapping
/// @endcode
///
/// The backend in parts, one header each:
/// - `capabilities.hpp`: what the context offers, and the requirement above (checked on construction);
/// - `storage_plan.hpp`: the memory decision (`decide`): which storage and map flags each policy
///   combination gets, a staging buffer for `placement::device`, a shadow copy under
///   `options::force_traditional` (its table is the reference);
/// - `dsa.hpp`: the buffer calls, through direct state access (GL 4.5 or
///   `GL_ARB_direct_state_access`) or, without it, through the `GL_COPY_READ_BUFFER` /
///   `GL_COPY_WRITE_BUFFER` bindings;
/// - `kernel.hpp` and `glsl_rewrite.hpp`: `gl_kernel`, and dispatches above the group-count limit;
/// - `context_state.hpp`: the context thread, fence completion, deletion of objects released off it.
/// GPU writes reach the host through `glMemoryBarrier` (issued after every dispatch and copy) and a
/// fence (`glFenceSync`/`glClientWaitSync`); fences of one context complete in submission order.
///
/// ## Thread rules
/// A GL context is current on one thread. Everything of this backend that calls GL must run on the
/// thread the context was current on when the backend was made (the *context thread*): creating
/// and destroying the backend, creating kernels and buffers, `allocate`, `flush`, `invalidate`,
/// `copy`, `dispatch`, `submitted_fence`, and `wait`/`is_complete` of a fence not yet known complete.
/// Every such call checks the thread (`options::check_thread`, on by default, one id comparison)
/// and throws `errc::wrong_thread` naming the call and both threads. Hence, off the context thread,
/// a buffer may be written only through a view or pointer taken on the context thread while it is
/// idle (e.g. with `gl_parallel_writes`), and destroyed only once idle: its GL objects (and those of
/// kernels) are then queued and deleted on the context thread at the backend's next call.
/// Call `rebind_thread()` after making the context current on another thread.
/// The backend changes the current program, indexed storage-buffer bindings `0..n-1` and
/// uniform-buffer binding 0 (and, without DSA, the copy-read/copy-write bindings) of the context.
#pragma once

#include "loader.hpp"

#include "capabilities.hpp"
#include "context_state.hpp"
#include "dsa.hpp"
#include "gl_error.hpp"
#include "kernel.hpp"
#include "storage_plan.hpp"

#include "../concepts.hpp"
#include "../detail/allocate.hpp"
#include "../detail/range_check.hpp"
#include "../fault_injection.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief The OpenGL backend (see the file comment for its parts and the thread rules).
class gl_backend : public detail::allocation_entry_points<gl_backend> {
    friend class detail::allocation_entry_points<gl_backend>;

public:
    /// @brief Behaviour switches.
    struct options {
        bool force_traditional = false;  ///< no persistent mapping: shadow copies, glBufferSubData (reported)
        bool force_no_dsa = false;       ///< use bind-to-target calls even where DSA exists
        bool check_thread = true;        ///< throw errc::wrong_thread for GL calls off the context thread
        /// Fails the N-th call of a kind when armed (tests of failure paths; null, the default: no
        /// faults, one pointer test per call). What each point does here: see the OpenGL column of
        /// fault_injection.hpp (allocate: glBufferStorage / glBufferData, map: glMapBufferRange,
        /// flush: every flush/invalidate, submit and device_lost: every dispatch, copy and staging
        /// copy, wait: a bounded wait for a fence; a lost device acts as a lost context).
        std::shared_ptr<fault_injector> faults{};
    };

    /// @brief A point in the context's command stream: a shared `glFenceSync`. Copyable; a
    /// default-constructed fence is complete. The GL sync object is deleted when it is seen
    /// signaled or when the last copy goes (on the context thread, or queued for it).
    class fence {
    public:
        fence() = default;
        /// @brief True for the default (complete, nothing to wait for) fence.
        [[nodiscard]] bool empty() const noexcept { return sync_ == nullptr; }
        /// @brief Position in the backend's submission order (0 for the empty fence).
        [[nodiscard]] std::uint64_t serial() const noexcept { return sync_ ? sync_->serial : 0; }
        friend bool operator==(const fence& a, const fence& b) noexcept { return a.sync_ == b.sync_; }

    private:
        friend class gl_backend;
        explicit fence(std::shared_ptr<detail::gl_sync> s) noexcept : sync_(std::move(s)) {}
        std::shared_ptr<detail::gl_sync> sync_;
    };

    /// @brief One allocation: the GL buffer kernels bind, plus its host view (persistent mapping,
    /// staging buffer mapping, or shadow copy). Move-only; deletes its GL buffers (see thread rules).
    class allocation {
    public:
        allocation() = default;
        allocation(allocation&& o) noexcept
            : state_(std::move(o.state_)), buffer_(std::exchange(o.buffer_, 0)), staging_(std::exchange(o.staging_, 0)),
              mapped_(std::exchange(o.mapped_, nullptr)), shadow_(std::move(o.shadow_)), size_(std::exchange(o.size_, 0)),
              plan_(std::move(o.plan_)) {}
        allocation& operator=(allocation&& o) noexcept {
            if (this != &o) {
                release();
                state_ = std::move(o.state_);
                buffer_ = std::exchange(o.buffer_, 0);
                staging_ = std::exchange(o.staging_, 0);
                mapped_ = std::exchange(o.mapped_, nullptr);
                shadow_ = std::move(o.shadow_);
                size_ = std::exchange(o.size_, 0);
                plan_ = std::move(o.plan_);
            }
            return *this;
        }
        allocation(const allocation&) = delete;
        allocation& operator=(const allocation&) = delete;
        ~allocation() { release(); }

        /// @brief The host view: persistent mapping, staging mapping or shadow copy.
        [[nodiscard]] std::byte* host_data() const noexcept { return shadow_ ? shadow_.get() : mapped_; }
        /// @brief Bytes of the allocation.
        [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
        /// @brief What was chosen and why (fallbacks included).
        [[nodiscard]] const allocation_report& report() const noexcept { return plan_.report; }
        /// @brief The GL buffer kernels bind (the device copy).
        [[nodiscard]] GLuint buffer() const noexcept { return buffer_; }
        /// @brief The staging buffer (staged mode), else 0.
        [[nodiscard]] GLuint staging_buffer() const noexcept { return staging_; }
        /// @brief The storage and map flags chosen for this allocation.
        [[nodiscard]] const gl_storage_plan& plan() const noexcept { return plan_; }
        /// @brief How the host view reaches the GL buffer.
        [[nodiscard]] gl_storage_mode mode() const noexcept { return plan_.mode; }
        /// @brief False for an empty (default or moved-from) allocation.
        [[nodiscard]] explicit operator bool() const noexcept { return buffer_ != 0; }

    private:
        friend class gl_backend;
        void release() noexcept {
            if (state_ && (buffer_ != 0 || staging_ != 0)) state_->retire_buffers({buffer_, staging_});
            state_.reset();
            buffer_ = staging_ = 0;
            mapped_ = nullptr;  // deleting a buffer unmaps it
            shadow_.reset();
            size_ = 0;
        }
        std::shared_ptr<detail::gl_shared_state> state_;
        GLuint buffer_ = 0;
        GLuint staging_ = 0;
        std::byte* mapped_ = nullptr;
        std::unique_ptr<std::byte[]> shadow_;
        std::uint64_t size_ = 0;
        gl_storage_plan plan_;
    };

    /// @brief Takes the GL context current on this thread (made and loaded by the caller, e.g. with
    /// `egl_context`), detects its capabilities and records this thread as the context thread.
    /// @throws std::system_error unsupported: no current context, GL functions not loaded, less than
    /// GL 4.4 or GL 4.3 with GL_ARB_buffer_storage
    gl_backend() : gl_backend(options{}) {}
    /// @brief As the default constructor, with behaviour switches.
    /// @throws std::system_error unsupported: no current context, GL functions not loaded, less than
    /// GL 4.4 or GL 4.3 with GL_ARB_buffer_storage
    explicit gl_backend(options opt)
        : opt_(opt), state_(std::make_shared<detail::gl_shared_state>()), caps_(detail::gl_query_capabilities()) {
        state_->owner.store(std::this_thread::get_id());
        calls_.dsa = caps_.direct_state_access && !opt_.force_no_dsa;
    }

    gl_backend(const gl_backend&) = delete;
    gl_backend& operator=(const gl_backend&) = delete;

    /// @brief Waits (bounded) for the submitted work and deletes the backend's GL objects; on the
    /// context thread. Buffers and kernels should be gone first: the GL objects of those that
    /// outlive the backend are left to the context.
    ~gl_backend() {
        if (state_->on_owner()) {
#if UNIBUF_EXCEPTIONS
            try {
                wait_idle_impl(default_wait_timeout);
            } catch (...) {
                // a lost context: nothing to wait for; the objects go all the same
            }
#else
            wait_idle_impl(default_wait_timeout);
#endif
            state_->collect();
            if (push_ubo_ != 0) glDeleteBuffers(1, &push_ubo_);
        }
        std::lock_guard lk(state_->m);
        state_->alive = false;
    }

    /// @brief "opengl".
    [[nodiscard]] std::string_view name() const noexcept { return "opengl"; }
    /// @brief The options the backend was made with.
    [[nodiscard]] const options& config() const noexcept { return opt_; }
    /// @brief What the context offers (version, extensions used, limits).
    [[nodiscard]] const gl_capabilities& capabilities() const noexcept { return caps_; }
    /// @brief Limits for sub-allocation: storage-buffer offset alignment; GL has no non-coherent atom.
    [[nodiscard]] device_limits limits() const noexcept {
        device_limits l;
        l.non_coherent_atom = 1;
        l.min_storage_offset_alignment = caps_.storage_offset_alignment;
        return l;
    }
    /// @brief The thread GL calls must run on.
    [[nodiscard]] std::thread::id context_thread() const noexcept { return state_->owner.load(); }
    /// @brief Makes the calling thread the context thread (call after making the context current here).
    void rebind_thread() noexcept { state_->owner.store(std::this_thread::get_id()); }

    /// @brief The GL storage for `req` (the table in `storage_plan.hpp`): a pure function of the
    /// request and the options.
    [[nodiscard]] gl_storage_plan decide(const memory_request& req) const {
        return detail::gl_plan_storage(req, opt_.force_traditional);
    }

    // allocate(req) / try_allocate(req, ec): detail::allocation_entry_points over allocate_impl;
    // failures: invalid_argument (0 bytes), out_of_memory, unsupported, mapping_failed, wrong_thread.

    /// @brief Host writes in `[off, off+n)` to the GL buffer: nothing (coherent mapping),
    /// `glFlushMappedNamedBufferRange` (explicit flush), a staging copy (returns its fence) or
    /// `glBufferSubData` (shadow). @throws std::system_error out_of_range, invalid_argument (an
    /// empty allocation), wrong_thread; out_of_memory / device_lost only where `options::faults`
    /// injects them
    fence flush(allocation& a, std::uint64_t off, std::uint64_t n) {
        require_thread("flush");
        check(a, off, n, "flush");
        require_context("flush");
        state_->collect();
        if (n == 0) return {};
        inject(fault_point::flush, [&] { return "a flush of bytes [" + std::to_string(off) + ", +" + std::to_string(n) + ")"; });
        switch (a.plan_.mode) {
            case gl_storage_mode::persistent:
                if ((a.plan_.map_flags & GL_MAP_FLUSH_EXPLICIT_BIT) != 0) calls_.flush_mapped(a.buffer_, off, n);
                return {};
            case gl_storage_mode::staged:
                inject_submit("the staging copy of a flush");
                calls_.copy(a.staging_, off, a.buffer_, off, n);
                return make_fence();
            case gl_storage_mode::shadow:
                calls_.sub_data(a.buffer_, off, n, a.shadow_.get() + off);
                return {};
        }
        return {};
    }

    /// @brief GPU writes in `[off, off+n)` to the host view (the caller waited for the work that
    /// wrote them): nothing (coherent), barrier + fence wait (non-coherent), a staging copy waited
    /// for, or `glGetBufferSubData` (shadow). Every wait is bounded by `timeout`.
    /// @throws std::system_error timeout, out_of_range, invalid_argument (an empty allocation),
    /// wrong_thread; out_of_memory / device_lost only where `options::faults` injects them
    void invalidate(allocation& a, std::uint64_t off, std::uint64_t n,
                    std::chrono::nanoseconds timeout = default_wait_timeout) {
        require_thread("invalidate");
        check(a, off, n, "invalidate");
        require_context("invalidate");
        state_->collect();
        if (n == 0) return;
        inject(fault_point::flush,
               [&] { return "an invalidate of bytes [" + std::to_string(off) + ", +" + std::to_string(n) + ")"; });
        switch (a.plan_.mode) {
            case gl_storage_mode::persistent:
                if ((a.plan_.storage_flags & GL_MAP_COHERENT_BIT) == 0) {
                    glMemoryBarrier(GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT);
                    wait_or_throw(make_fence(), "invalidate (non-coherent mapping)", timeout);
                }
                return;
            case gl_storage_mode::staged:
                inject_submit("the staging copy of an invalidate");
                calls_.copy(a.buffer_, off, a.staging_, off, n);
                wait_or_throw(make_fence(), "invalidate (staging copy back to the host)", timeout);
                return;
            case gl_storage_mode::shadow:
                calls_.get_sub_data(a.buffer_, off, n, a.shadow_.get() + off);
                return;
        }
    }

    /// @brief GPU copy between the buffers kernels bind (`glCopyNamedBufferSubData`), then a barrier
    /// for mapped reads and a fence. @throws std::system_error out_of_range, invalid_argument
    /// (overlapping ranges of one buffer, an empty allocation), wrong_thread; out_of_memory /
    /// device_lost only where `options::faults` injects them
    fence copy(allocation& src, std::uint64_t src_off, allocation& dst, std::uint64_t dst_off, std::uint64_t n) {
        require_thread("copy");
        check(src, src_off, n, "copy source");
        check(dst, dst_off, n, "copy destination");
        state_->collect();
        if (n == 0) return {};
        if (src.buffer_ == dst.buffer_ && src_off < dst_off + n && dst_off < src_off + n)
            throw_error(errc::invalid_argument, "unibuf: gl_backend: copy of " + std::to_string(n) + " bytes from offset " +
                                                    std::to_string(src_off) + " to offset " + std::to_string(dst_off) +
                                                    " of the same buffer overlaps (glCopyBufferSubData forbids it)");
        inject_submit("a device copy");
        calls_.copy(src.buffer_, src_off, dst.buffer_, dst_off, n);
        glMemoryBarrier(GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT);
        return make_fence();
    }

    /// @brief Runs `k` over `groups` with `ranges` bound as storage buffers 0..n-1 and `push` in the
    /// uniform block at binding 0; then a barrier (storage, buffer-update, client-mapped) and a fence.
    /// GL runs one context's commands in order, so `after` (fences of this context) is already
    /// satisfied; a fence of another backend is waited for on the GPU (`glWaitSync`).
    /// Group counts above GL_MAX_COMPUTE_WORK_GROUP_COUNT run as several glDispatchCompute calls
    /// (see `gl_kernel`). @throws std::system_error invalid_argument (missing binding, misaligned
    /// offset, too many bytes of push constants), out_of_range, wrong_thread; out_of_memory /
    /// device_lost only where `options::faults` injects them
    fence dispatch(const gl_kernel& k, dispatch_size groups, std::span<const bound_range<gl_backend>> ranges,
                   std::span<const std::byte> push, std::span<const fence> after) {
        require_thread("dispatch");
        state_->collect();
        check_dispatch(k, ranges, push);
        inject_submit("a dispatch");
        wait_for_other_contexts(after);
        glUseProgram(k.program());
        for (std::size_t i = 0; i < ranges.size(); ++i)
            glBindBufferRange(GL_SHADER_STORAGE_BUFFER, static_cast<GLuint>(i), ranges[i].allocation->buffer_,
                              static_cast<GLintptr>(ranges[i].offset), static_cast<GLsizeiptr>(ranges[i].size));
        if (k.push_size() > 0) bind_push_constants(k, push);
        k.run_groups(groups, caps_.max_groups);
        glMemoryBarrier(GL_SHADER_STORAGE_BARRIER_BIT | GL_BUFFER_UPDATE_BARRIER_BIT | GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT);
        return make_fence();
    }

    /// @brief A fence after every command submitted so far (`glFenceSync`). @throws wrong_thread
    [[nodiscard]] fence submitted_fence() {
        require_thread("submitted_fence");
        state_->collect();
        return make_fence();
    }

    /// @brief True when `f` has completed; polls without blocking where it is not known yet.
    /// @throws std::system_error wrong_thread (a pending fence off the context thread), device_lost
    [[nodiscard]] bool is_complete(const fence& f) {
        if (!f.sync_ || f.sync_->serial <= f.sync_->ctx->completed.load(std::memory_order_acquire)) return true;
        require_thread("is_complete");
        return poll(*f.sync_, 0);
    }
    /// @brief Waits up to `timeout` for `f` (glClientWaitSync); false on timeout.
    /// @throws std::system_error wrong_thread (a pending fence off the context thread), device_lost
    [[nodiscard]] bool wait(const fence& f, std::chrono::nanoseconds timeout) {
        if (!f.sync_ || f.sync_->serial <= f.sync_->ctx->completed.load(std::memory_order_acquire)) return true;
        require_thread("wait");
        return bounded_wait(*f.sync_, timeout);
    }
    /// @brief Waits (bounded) for all submitted work; false on timeout. @throws wrong_thread
    [[nodiscard]] bool wait_idle(std::chrono::nanoseconds timeout = default_wait_timeout) {
        require_thread("wait_idle");
        fence f = make_fence();
        return bounded_wait(*f.sync_, timeout);
    }

    /// @brief The buffer calls as this backend makes them (DSA or bindings); for tests and tools.
    /// @throws std::system_error wrong_thread
    [[nodiscard]] GLint buffer_parameter(GLuint buffer, GLenum pname) {
        require_thread("buffer_parameter");
        return calls_.parameter(buffer, pname);
    }

private:
    friend class gl_kernel;

    // A lost context (an injected device loss, options::faults) refuses every later call.
    void require_context(const char* what) const {
        if (lost_.load(std::memory_order_acquire))
            throw_error(errc::device_lost, std::string("unibuf: gl_backend::") + what +
                                               ": the device was lost (injected fault, as GL_CONTEXT_LOST)");
    }

    // options::faults at a call of kind `p` (not submissions: see inject_submit); throws the
    // injected failure naming the call and `what()` was asked.
    template <class What>
    void inject(fault_point p, What&& what) const {
        if (std::string m = fault_injector::failure(opt_.faults.get(), "gl_backend", p, what); !m.empty())
            throw_error(errc::out_of_memory, m);
    }

    // Before a submission (dispatch, copy, staging copy) issues any GL command: refused on a lost
    // context; an injected submit failure (out_of_memory) or device loss (the context is lost from
    // then on) issues nothing.
    void inject_submit(const char* what) {
        require_context(what);
        if (!opt_.faults) return;
        if (std::string m = fault_injector::failure(opt_.faults.get(), "gl_backend", fault_point::submit,
                                                    [&] { return std::string(what) + "; nothing was issued"; });
            !m.empty())
            throw_error(errc::out_of_memory, m);
        if (std::string m = fault_injector::failure(opt_.faults.get(), "gl_backend", fault_point::device_lost, [&] { return what; });
            !m.empty()) {
            lost_.store(true, std::memory_order_release);
            throw_error(errc::device_lost, m + ": the device was lost (as GL_CONTEXT_LOST); every later call fails");
        }
    }

    void require_thread(const char* what) const {
        if (!opt_.check_thread || state_->on_owner()) return;
        throw_error(errc::wrong_thread,
                    std::string("unibuf: gl_backend::") + what + " was called on thread " +
                        detail::thread_name(std::this_thread::get_id()) + ", but the GL context of this backend is "
                        "current on thread " + detail::thread_name(state_->owner.load()) +
                        "; GL calls must run on the context's thread (other threads may only write through a "
                        "host view taken there, see gl_parallel_writes), or call rebind_thread() after making "
                        "the context current on this thread");
    }

    // For gl_kernel's constructor: the shared state, once the thread is checked and garbage collected.
    std::shared_ptr<detail::gl_shared_state> checked_state(const char* what) {
        require_thread(what);
        state_->collect();
        return state_;
    }

    void check(const allocation& a, std::uint64_t off, std::uint64_t n, const char* what) const {
        detail::check_allocation_range("gl_backend", what, static_cast<bool>(a), a.size_, off, n);
    }

    // ---- dispatch, in steps ----------------------------------------------------------------------

    // Everything a dispatch can get wrong, before any GL call.
    void check_dispatch(const gl_kernel& k, std::span<const bound_range<gl_backend>> ranges,
                        std::span<const std::byte> push) const {
        const std::string who = "unibuf: gl_backend: dispatch of '" + k.name() + "': ";
        if (!k) throw_error(errc::invalid_argument, who + "the kernel is empty (moved from or never built)");
        for (std::uint32_t b : k.storage_bindings())
            if (b >= ranges.size())
                throw_error(errc::invalid_argument, who + "the kernel uses storage binding " + std::to_string(b) +
                                                        " but the dispatch binds " + std::to_string(ranges.size()) + " buffer(s)");
        if (ranges.size() > caps_.max_storage_bindings)
            throw_error(errc::invalid_argument, who + std::to_string(ranges.size()) + " bindings exceed "
                                                      "GL_MAX_SHADER_STORAGE_BUFFER_BINDINGS (" +
                                                      std::to_string(caps_.max_storage_bindings) + ")");
        if (push.size() > k.push_size())
            throw_error(errc::invalid_argument, who + std::to_string(push.size()) + " bytes of push constants, but the "
                                                      "kernel's uniform block at binding 0 holds " +
                                                      std::to_string(k.push_size()) + " bytes");
        for (std::size_t i = 0; i < ranges.size(); ++i) check_binding(who, i, ranges[i]);
    }

    void check_binding(const std::string& who, std::size_t i, const bound_range<gl_backend>& r) const {
        if (r.allocation == nullptr)
            throw_error(errc::invalid_argument, who + "binding " + std::to_string(i) + " has no allocation");
        check(*r.allocation, r.offset, r.size, "dispatch binding");
        if (r.offset % caps_.storage_offset_alignment != 0)
            throw_error(errc::invalid_argument, who + "binding " + std::to_string(i) + " starts at byte offset " +
                                                    std::to_string(r.offset) + ", not a multiple of "
                                                    "GL_SHADER_STORAGE_BUFFER_OFFSET_ALIGNMENT (" +
                                                    std::to_string(caps_.storage_offset_alignment) + ")");
        if (r.size == 0 || r.size > caps_.max_storage_block_size)
            throw_error(errc::invalid_argument, who + "binding " + std::to_string(i) + " of " + std::to_string(r.size) +
                                                    " bytes is empty or exceeds GL_MAX_SHADER_STORAGE_BLOCK_SIZE (" +
                                                    std::to_string(caps_.max_storage_block_size) + ")");
    }

    // Fences of this context are satisfied by command order; another context's are waited for on the GPU.
    void wait_for_other_contexts(std::span<const fence> after) const {
        for (const fence& f : after)
            if (f.sync_ && f.sync_->ctx != state_ && f.sync_->sync != nullptr)
                glWaitSync(f.sync_->sync, 0, GL_TIMEOUT_IGNORED);
    }

    // The push constants into the uniform buffer at binding 0 (grown as kernels need).
    void bind_push_constants(const gl_kernel& k, std::span<const std::byte> push) {
        const std::uint64_t need = (std::uint64_t{k.push_size()} + 15) / 16 * 16;
        if (push_ubo_ == 0 || push_ubo_size_ < need) {
            if (push_ubo_ == 0) push_ubo_ = calls_.create();
            push_ubo_size_ = std::max<std::uint64_t>(need, 256);
            calls_.data(push_ubo_, push_ubo_size_, GL_DYNAMIC_DRAW);
        }
        // Bytes the caller did not give are zero, so the block never holds stale parameters.
        push_scratch_.assign(k.push_size(), std::byte{0});
        if (!push.empty()) std::memcpy(push_scratch_.data(), push.data(), push.size());
        calls_.sub_data(push_ubo_, 0, push_scratch_.size(), push_scratch_.data());
        glBindBufferRange(GL_UNIFORM_BUFFER, 0, push_ubo_, 0, static_cast<GLsizeiptr>(k.push_size()));
    }

    // ---- fences ----------------------------------------------------------------------------------

    fence make_fence() {
        GLsync s = glFenceSync(GL_SYNC_GPU_COMMANDS_COMPLETE, 0);
        return fence(std::make_shared<detail::gl_sync>(s, ++issued_, state_));
    }

    bool poll(detail::gl_sync& s, std::uint64_t timeout_ns) {
        if (s.sync == nullptr) return true;  // seen signaled before (another context's watermark)
        const bool lost = lost_.load(std::memory_order_acquire);
        // A lost context: only what already completed is complete; nothing more is waited for.
        const GLenum r = glClientWaitSync(s.sync, GL_SYNC_FLUSH_COMMANDS_BIT, lost ? 0 : timeout_ns);
        if (r == GL_ALREADY_SIGNALED || r == GL_CONDITION_SATISFIED) {
            auto& done = s.ctx->completed;
            std::uint64_t c = done.load(std::memory_order_relaxed);
            while (c < s.serial && !done.compare_exchange_weak(c, s.serial, std::memory_order_release)) {
            }
            glDeleteSync(s.sync);
            s.sync = nullptr;
            return true;
        }
        if (r == GL_WAIT_FAILED)
            throw_error(errc::device_lost, "unibuf: gl_backend: glClientWaitSync failed (GL_WAIT_FAILED): the context "
                                           "is lost or the fence is not of this context");
        if (lost)
            throw_error(errc::device_lost, "unibuf: gl_backend: the wait for fence " + std::to_string(s.serial) +
                                               ": the device was lost (injected fault, as GL_CONTEXT_LOST) before "
                                               "it completed");
        return false;
    }

    // A wait the caller bounded: options::faults may make it report a timeout at once. Counted for
    // every fence not seen signaled yet, before the driver is asked (on llvmpipe compute work is
    // done by the time glDispatchCompute returns: a count of fences found pending would stay 0).
    bool bounded_wait(detail::gl_sync& s, std::chrono::nanoseconds timeout) {
        if (opt_.faults && s.sync != nullptr && !lost_.load(std::memory_order_acquire) &&
            opt_.faults->hit(fault_point::wait))
            return false;  // an injected timeout
        return poll(s, static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count())));
    }

    void wait_or_throw(const fence& f, const char* what, std::chrono::nanoseconds timeout) {
        if (!bounded_wait(*f.sync_, timeout))
            throw_error(errc::timeout, std::string("unibuf: gl_backend: ") + what + " did not complete within " +
                                           detail::ms_text(timeout) + " ms");
    }

    bool wait_idle_impl(std::chrono::nanoseconds timeout) {
        fence f = make_fence();
        return poll(*f.sync_, static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count())));
    }

    // ---- allocation, in steps (never throws: ec and why say what failed) -------------------------

    allocation allocate_impl(const memory_request& req, std::error_code& ec, std::string& why) {
        ec.clear();
        if (!may_allocate(req, ec, why)) return {};
        if (lost_.load(std::memory_order_acquire)) {
            ec = errc::device_lost;
            why = "unibuf: gl_backend: an allocation of " + std::to_string(req.size_bytes) +
                  " bytes: the device was lost (injected fault, as GL_CONTEXT_LOST)";
            return {};
        }
        state_->collect();
        allocation a;
        a.state_ = state_;
        a.size_ = req.size_bytes;
        a.plan_ = decide(req);
        detail::gl_drain_errors();
        a.buffer_ = calls_.create();
        const bool made = a.plan_.mode == gl_storage_mode::shadow ? make_shadow(a, ec, why) : make_storage(a, ec, why);
        if (!made) return {};
        return a;
    }

    // The context thread, and a size GL can take.
    bool may_allocate(const memory_request& req, std::error_code& ec, std::string& why) const {
        if (opt_.check_thread && !state_->on_owner()) {
            ec = errc::wrong_thread;
            why = "unibuf: gl_backend::allocate was called off the context thread (thread " +
                  detail::thread_name(std::this_thread::get_id()) + "; the context is current on thread " +
                  detail::thread_name(state_->owner.load()) + ")";
            return false;
        }
        if (req.size_bytes == 0) {
            ec = errc::invalid_argument;
            why = "unibuf: gl_backend: an allocation of 0 bytes was requested; buffers need at least one element";
            return false;
        }
        // GL takes sizes as GLsizeiptr (signed) and the shadow copy is one array: larger sizes would
        // turn negative or wrap on the way into GL.
        constexpr std::uint64_t largest = static_cast<std::uint64_t>(std::numeric_limits<GLsizeiptr>::max()) <
                                                  std::uint64_t{std::numeric_limits<std::size_t>::max()}
                                              ? static_cast<std::uint64_t>(std::numeric_limits<GLsizeiptr>::max())
                                              : std::uint64_t{std::numeric_limits<std::size_t>::max()};
        if (req.size_bytes > largest) {
            ec = errc::out_of_memory;
            why = "unibuf: gl_backend: asked for " + std::to_string(req.size_bytes) +
                  " bytes; a GL buffer holds at most " + std::to_string(largest) + " bytes (GLsizeiptr)";
            return false;
        }
        return true;
    }

    // True (and ec, why set) when options::faults fails this `call` of kind `p` (allocate:
    // out_of_memory, map: mapping_failed), before it is made.
    bool injected(const char* call, fault_point p, std::uint64_t bytes, std::error_code& ec, std::string& why) const {
        std::string m = fault_injector::failure(opt_.faults.get(), "gl_backend", p, [&] {
            return call + (" of " + std::to_string(bytes) + " bytes, as ") +
                   (p == fault_point::map ? "a null mapping" : "GL_OUT_OF_MEMORY");
        });
        if (m.empty()) return false;
        ec = p == fault_point::map ? errc::mapping_failed : errc::out_of_memory;
        why = std::move(m);
        return true;
    }

    // True (and ec, why set) when the GL calls since the last check failed.
    bool gl_failed(const char* call, std::uint64_t bytes, std::error_code& ec, std::string& why) const {
        const GLenum e = glGetError();
        if (e == GL_NO_ERROR) return false;
        ec = e == GL_OUT_OF_MEMORY ? errc::out_of_memory : errc::unsupported;
        why = std::string("unibuf: gl_backend: ") + call + " of " + std::to_string(bytes) + " bytes failed with " +
              detail::gl_error_name(e) + " (" + caps_.renderer + ")";
        return true;
    }

    // Shadow mode: glBufferData and the host copy.
    bool make_shadow(allocation& a, std::error_code& ec, std::string& why) {
        if (injected("glBufferData", fault_point::allocate, a.size_, ec, why)) return false;
        calls_.data(a.buffer_, a.size_, a.plan_.usage_hint);
        if (gl_failed("glBufferData", a.size_, ec, why)) return false;
        a.shadow_.reset(new (std::nothrow) std::byte[a.size_]());
        if (!a.shadow_) {
            ec = errc::out_of_memory;
            why = "unibuf: gl_backend: the host shadow copy of " + std::to_string(a.size_) +
                  " bytes could not be allocated";
            return false;
        }
        return true;
    }

    // Persistent and staged modes: glBufferStorage (and the staging buffer), mapped once.
    bool make_storage(allocation& a, std::error_code& ec, std::string& why) {
        const gl_storage_plan& p = a.plan_;
        if (injected("glBufferStorage", fault_point::allocate, a.size_, ec, why)) return false;
        calls_.storage(a.buffer_, a.size_, p.storage_flags);
        if (gl_failed("glBufferStorage", a.size_, ec, why)) return false;
        GLuint mapped_buffer = a.buffer_;
        GLbitfield map_flags = p.map_flags;
        if (p.mode == gl_storage_mode::staged) {
            a.staging_ = calls_.create();
            if (injected("glBufferStorage (staging)", fault_point::allocate, a.size_, ec, why)) return false;
            calls_.storage(a.staging_, a.size_, p.staging_storage_flags);
            if (gl_failed("glBufferStorage (staging)", a.size_, ec, why)) return false;
            mapped_buffer = a.staging_;
            map_flags = p.staging_map_flags;
        }
        if (injected("glMapBufferRange", fault_point::map, a.size_, ec, why)) return false;
        a.mapped_ = static_cast<std::byte*>(calls_.map(mapped_buffer, a.size_, map_flags));
        if (a.mapped_ == nullptr) {
            const GLenum e = glGetError();
            ec = errc::mapping_failed;
            why = "unibuf: gl_backend: glMapBufferRange of " + std::to_string(a.size_) + " bytes (persistent) failed with " +
                  detail::gl_error_name(e) + " (" + caps_.renderer + ")";
            return false;
        }
        return true;
    }

    // Declaration order: state_ before everything that may hold GL objects; push_ubo_ deleted in ~gl_backend.
    options opt_;
    std::shared_ptr<detail::gl_shared_state> state_;
    gl_capabilities caps_;
    detail::gl_buffer_calls calls_;
    std::uint64_t issued_ = 0;  ///< serial of the last fence (context thread only)
    GLuint push_ubo_ = 0;       ///< uniform buffer holding the push constants of dispatches
    std::uint64_t push_ubo_size_ = 0;
    std::vector<std::byte> push_scratch_;
    std::atomic<bool> lost_{false};  ///< an injected device loss (options::faults): a lost context
};

} // namespace unibuf
