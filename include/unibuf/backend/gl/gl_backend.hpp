/// @file gl_backend.hpp
/// @brief The OpenGL 4.3+ backend: persistent-mapped buffer storage, GL fences, compute dispatch.
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
/// ## Memory (see `decide`)
/// | policies | GL storage |
/// |---|---|
/// | access read/write | `GL_MAP_READ_BIT` / `GL_MAP_WRITE_BIT` / both, plus `GL_MAP_PERSISTENT_BIT`, mapped once |
/// | coherent, write_combined | `GL_MAP_COHERENT_BIT`: host writes reach later GL commands without a flush |
/// | explicit_flush | no coherent bit; writes mapped with `GL_MAP_FLUSH_EXPLICIT_BIT`, `flush` = `glFlushMappedNamedBufferRange`; `invalidate` = `glMemoryBarrier(GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT)` + fence wait |
/// | write_combined | write bit only, no `GL_CLIENT_STORAGE_BIT` (unless placement::host asks for system memory) |
/// | placement::host | `GL_CLIENT_STORAGE_BIT` |
/// | placement::device_mapped | no `GL_CLIENT_STORAGE_BIT` (the driver may place it in VRAM) |
/// | placement::automatic | `GL_CLIENT_STORAGE_BIT` when the host reads (cached readback), none otherwise |
/// | placement::device | storage without map bits; host access through a persistent-mapped staging buffer, `glCopyNamedBufferSubData` both ways, fenced |
/// Where persistent mapping is missing (GL < 4.4 without `GL_ARB_buffer_storage`, or
/// `options::force_traditional`), every allocation takes the traditional path, reported in
/// `allocation_report::fallbacks`: a host shadow copy, `flush` = `glBufferSubData`,
/// `invalidate` = `glGetBufferSubData`. Without GL 4.5 / `GL_ARB_direct_state_access` the same calls
/// are made through `GL_COPY_READ_BUFFER`/`GL_COPY_WRITE_BUFFER` bindings.
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

#include "../concepts.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace unibuf {

class gl_backend;
class gl_kernel;

/// @brief How an allocation's host view reaches the GL buffer that kernels bind.
enum class gl_storage_mode : std::uint8_t {
    persistent,  ///< the host view is a persistent mapping of that buffer (zero-copy)
    staged,      ///< a device-only buffer plus a persistent-mapped staging buffer; copies both ways
    shadow,      ///< no persistent mapping: a host shadow copy, glBufferSubData / glGetBufferSubData
};

/// @brief Printable name of a storage mode.
[[nodiscard]] constexpr std::string_view to_string(gl_storage_mode m) noexcept {
    switch (m) {
        case gl_storage_mode::persistent: return "persistent";
        case gl_storage_mode::staged: return "staged";
        case gl_storage_mode::shadow: return "shadow";
    }
    return "?";
}

/// @brief What a request maps to in GL: the result of `gl_backend::decide`.
struct gl_storage_plan {
    gl_storage_mode mode = gl_storage_mode::persistent;
    GLbitfield storage_flags = 0;          ///< glBufferStorage flags of the buffer kernels bind
    GLbitfield map_flags = 0;              ///< glMapBufferRange access of it (persistent mode)
    GLbitfield staging_storage_flags = 0;  ///< staged mode: the staging buffer's storage flags
    GLbitfield staging_map_flags = 0;      ///< staged mode: its mapping
    GLenum usage_hint = 0;                 ///< shadow mode: glBufferData usage
    allocation_report report;
};

/// @brief What the current context offers, as the backend found it.
struct gl_capabilities {
    int major = 0;
    int minor = 0;
    bool buffer_storage = false;       ///< GL 4.4 or GL_ARB_buffer_storage
    bool direct_state_access = false;  ///< GL 4.5 or GL_ARB_direct_state_access (and declared by the loader)
    std::uint64_t storage_offset_alignment = 1;  ///< GL_SHADER_STORAGE_BUFFER_OFFSET_ALIGNMENT
    std::uint64_t uniform_offset_alignment = 1;  ///< GL_UNIFORM_BUFFER_OFFSET_ALIGNMENT
    std::uint64_t max_storage_block_size = 0;    ///< GL_MAX_SHADER_STORAGE_BLOCK_SIZE
    std::uint32_t max_storage_bindings = 0;      ///< GL_MAX_SHADER_STORAGE_BUFFER_BINDINGS
    std::uint64_t max_uniform_block_size = 0;    ///< GL_MAX_UNIFORM_BLOCK_SIZE
    std::array<std::uint32_t, 3> max_groups{};   ///< GL_MAX_COMPUTE_WORK_GROUP_COUNT
    std::string vendor, renderer, version;
};

namespace detail {

inline std::string thread_name(std::thread::id id) {
    std::ostringstream s;
    s << id;
    return s.str();
}

/// State shared by a backend, its allocations, kernels and fences: the context thread, the
/// completion watermark of its fences, and GL objects released off the context thread.
struct gl_shared_state {
    std::atomic<std::thread::id> owner;
    std::atomic<std::uint64_t> completed{0};  ///< every fence with serial <= this is complete
    std::atomic<bool> has_garbage{false};
    std::mutex m;
    bool alive = true;  ///< false once the backend is gone (guarded by m)
    std::vector<GLuint> dead_buffers;   // guarded by m
    std::vector<GLuint> dead_programs;  // guarded by m
    std::vector<GLsync> dead_syncs;     // guarded by m

    [[nodiscard]] bool on_owner() const noexcept { return std::this_thread::get_id() == owner.load(std::memory_order_relaxed); }

    /// Deletes now (context thread) or queues for the context thread; drops them when the backend is gone.
    void retire_buffers(std::initializer_list<GLuint> names) noexcept {
        std::unique_lock lk(m);
        if (!alive) return;
        if (on_owner()) {
            lk.unlock();
            for (GLuint b : names)
                if (b != 0) glDeleteBuffers(1, &b);
            return;
        }
        for (GLuint b : names)
            if (b != 0) dead_buffers.push_back(b);
        has_garbage.store(true, std::memory_order_release);
    }
    void retire_program(GLuint p) noexcept {
        std::unique_lock lk(m);
        if (!alive || p == 0) return;
        if (on_owner()) {
            lk.unlock();
            glDeleteProgram(p);
            return;
        }
        dead_programs.push_back(p);
        has_garbage.store(true, std::memory_order_release);
    }
    void retire_sync(GLsync s) noexcept {
        std::unique_lock lk(m);
        if (!alive || s == nullptr) return;
        if (on_owner()) {
            lk.unlock();
            glDeleteSync(s);
            return;
        }
        dead_syncs.push_back(s);
        has_garbage.store(true, std::memory_order_release);
    }
    /// Context thread: deletes what other threads released.
    void collect() noexcept {
        if (!has_garbage.load(std::memory_order_acquire)) return;
        std::vector<GLuint> buffers, programs;
        std::vector<GLsync> syncs;
        {
            std::lock_guard lk(m);
            buffers.swap(dead_buffers);
            programs.swap(dead_programs);
            syncs.swap(dead_syncs);
            has_garbage.store(false, std::memory_order_relaxed);
        }
        if (!buffers.empty()) glDeleteBuffers(static_cast<GLsizei>(buffers.size()), buffers.data());
        for (GLuint p : programs) glDeleteProgram(p);
        for (GLsync s : syncs) glDeleteSync(s);
    }
};

/// One GL fence sync, shared by every copy of a `gl_backend::fence`.
struct gl_sync {
    GLsync sync = nullptr;  ///< deleted (null) once seen signaled; touched on the context thread only
    std::uint64_t serial = 0;
    std::shared_ptr<gl_shared_state> ctx;
    gl_sync(GLsync s, std::uint64_t n, std::shared_ptr<gl_shared_state> c) noexcept : sync(s), serial(n), ctx(std::move(c)) {}
    gl_sync(const gl_sync&) = delete;
    gl_sync& operator=(const gl_sync&) = delete;
    ~gl_sync() {
        if (sync != nullptr) ctx->retire_sync(sync);
    }
};

/// The buffer calls, through DSA (GL 4.5 / ARB_direct_state_access) or the copy bindings.
struct gl_buffer_calls {
    bool dsa = false;

    [[nodiscard]] GLuint create() const noexcept {
        GLuint b = 0;
#if defined(GL_VERSION_4_5)
        if (dsa) {
            glCreateBuffers(1, &b);
            return b;
        }
#endif
        glGenBuffers(1, &b);
        glBindBuffer(GL_COPY_WRITE_BUFFER, b);  // a name becomes a buffer when first bound
        return b;
    }
    void storage(GLuint b, std::uint64_t n, GLbitfield flags) const noexcept {
#if defined(GL_VERSION_4_5)
        if (dsa) {
            glNamedBufferStorage(b, static_cast<GLsizeiptr>(n), nullptr, flags);
            return;
        }
#endif
        glBindBuffer(GL_COPY_WRITE_BUFFER, b);
        glBufferStorage(GL_COPY_WRITE_BUFFER, static_cast<GLsizeiptr>(n), nullptr, flags);
    }
    void data(GLuint b, std::uint64_t n, GLenum hint) const noexcept {
#if defined(GL_VERSION_4_5)
        if (dsa) {
            glNamedBufferData(b, static_cast<GLsizeiptr>(n), nullptr, hint);
            return;
        }
#endif
        glBindBuffer(GL_COPY_WRITE_BUFFER, b);
        glBufferData(GL_COPY_WRITE_BUFFER, static_cast<GLsizeiptr>(n), nullptr, hint);
    }
    [[nodiscard]] void* map(GLuint b, std::uint64_t n, GLbitfield access) const noexcept {
#if defined(GL_VERSION_4_5)
        if (dsa) return glMapNamedBufferRange(b, 0, static_cast<GLsizeiptr>(n), access);
#endif
        glBindBuffer(GL_COPY_WRITE_BUFFER, b);
        return glMapBufferRange(GL_COPY_WRITE_BUFFER, 0, static_cast<GLsizeiptr>(n), access);
    }
    void flush_mapped(GLuint b, std::uint64_t off, std::uint64_t n) const noexcept {
#if defined(GL_VERSION_4_5)
        if (dsa) {
            glFlushMappedNamedBufferRange(b, static_cast<GLintptr>(off), static_cast<GLsizeiptr>(n));
            return;
        }
#endif
        glBindBuffer(GL_COPY_WRITE_BUFFER, b);
        glFlushMappedBufferRange(GL_COPY_WRITE_BUFFER, static_cast<GLintptr>(off), static_cast<GLsizeiptr>(n));
    }
    void sub_data(GLuint b, std::uint64_t off, std::uint64_t n, const void* src) const noexcept {
#if defined(GL_VERSION_4_5)
        if (dsa) {
            glNamedBufferSubData(b, static_cast<GLintptr>(off), static_cast<GLsizeiptr>(n), src);
            return;
        }
#endif
        glBindBuffer(GL_COPY_WRITE_BUFFER, b);
        glBufferSubData(GL_COPY_WRITE_BUFFER, static_cast<GLintptr>(off), static_cast<GLsizeiptr>(n), src);
    }
    void get_sub_data(GLuint b, std::uint64_t off, std::uint64_t n, void* dst) const noexcept {
#if defined(GL_VERSION_4_5)
        if (dsa) {
            glGetNamedBufferSubData(b, static_cast<GLintptr>(off), static_cast<GLsizeiptr>(n), dst);
            return;
        }
#endif
        glBindBuffer(GL_COPY_READ_BUFFER, b);
        glGetBufferSubData(GL_COPY_READ_BUFFER, static_cast<GLintptr>(off), static_cast<GLsizeiptr>(n), dst);
    }
    void copy(GLuint src, std::uint64_t so, GLuint dst, std::uint64_t d, std::uint64_t n) const noexcept {
#if defined(GL_VERSION_4_5)
        if (dsa) {
            glCopyNamedBufferSubData(src, dst, static_cast<GLintptr>(so), static_cast<GLintptr>(d), static_cast<GLsizeiptr>(n));
            return;
        }
#endif
        glBindBuffer(GL_COPY_READ_BUFFER, src);
        glBindBuffer(GL_COPY_WRITE_BUFFER, dst);
        glCopyBufferSubData(GL_COPY_READ_BUFFER, GL_COPY_WRITE_BUFFER, static_cast<GLintptr>(so),
                            static_cast<GLintptr>(d), static_cast<GLsizeiptr>(n));
    }
    [[nodiscard]] GLint parameter(GLuint b, GLenum pname) const noexcept {
        GLint v = 0;
#if defined(GL_VERSION_4_5)
        if (dsa) {
            glGetNamedBufferParameteriv(b, pname, &v);
            return v;
        }
#endif
        glBindBuffer(GL_COPY_READ_BUFFER, b);
        glGetBufferParameteriv(GL_COPY_READ_BUFFER, pname, &v);
        return v;
    }
};

/// GL has no glDispatchComputeBase: dispatches larger than GL_MAX_COMPUTE_WORK_GROUP_COUNT run as
/// several glDispatchCompute calls, and the kernel learns each one's base group from a uniform.
/// This rewrites the kernel's gl_WorkGroupID / gl_GlobalInvocationID / gl_NumWorkGroups into
/// macros that add the base (and give the whole dispatch's group count), declared after the
/// source's leading #version/#extension lines, with #line keeping compiler messages' line numbers.
/// Returns false (and leaves `out` empty) when the source uses none of them.
inline bool gl_add_group_base(std::string_view src, std::string& out) {
    static constexpr std::string_view names[] = {"gl_WorkGroupID", "gl_GlobalInvocationID", "gl_NumWorkGroups"};
    auto is_ident = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    };
    std::string body;
    bool used = false;
    for (std::size_t i = 0; i < src.size();) {
        bool replaced = false;
        if (src[i] == 'g' && (i == 0 || !is_ident(src[i - 1]))) {
            for (std::string_view n : names) {
                if (src.substr(i, n.size()) == n && (i + n.size() == src.size() || !is_ident(src[i + n.size()]))) {
                    body += "unibuf_";
                    body += n.substr(3);
                    i += n.size();
                    replaced = used = true;
                    break;
                }
            }
        }
        if (!replaced) body += src[i++];
    }
    if (!used) return false;
    // The leading directives: lines (after blank lines and comments) starting with #version / #extension.
    std::size_t pos = 0;
    std::size_t insert_at = 0;
    int line = 1;
    int insert_line = 1;
    bool in_block_comment = false;
    while (pos < body.size()) {
        const std::size_t eol = std::min(body.find('\n', pos), body.size());
        std::string_view l(body.data() + pos, eol - pos);
        const std::size_t first = l.find_first_not_of(" \t\r");
        const std::string_view t = first == std::string_view::npos ? std::string_view{} : l.substr(first);
        const bool directive = !in_block_comment && (t.starts_with("#version") || t.starts_with("#extension"));
        const bool blank_or_comment = in_block_comment || t.empty() || t.starts_with("//") || t.starts_with("/*");
        if (t.starts_with("/*") && t.find("*/") == std::string_view::npos) in_block_comment = true;
        else if (in_block_comment && t.find("*/") != std::string_view::npos) in_block_comment = false;
        if (!directive && !blank_or_comment) break;
        pos = eol + 1;
        ++line;
        if (directive) {
            insert_at = std::min(pos, body.size());
            insert_line = line;
        }
    }
    const std::string_view prologue =
        "uniform uvec3 unibuf_group_base;\n"
        "uniform uvec3 unibuf_group_count;\n"
        "#define unibuf_WorkGroupID (gl_WorkGroupID + unibuf_group_base)\n"
        "#define unibuf_GlobalInvocationID (gl_GlobalInvocationID + unibuf_group_base * gl_WorkGroupSize)\n"
        "#define unibuf_NumWorkGroups (unibuf_group_count)\n";
    out.assign(body, 0, insert_at);
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += prologue;
    out += "#line " + std::to_string(insert_line) + "\n";
    out.append(body, insert_at, std::string::npos);
    return true;
}

inline std::string gl_error_name(GLenum e) {
    switch (e) {
        case GL_INVALID_ENUM: return "GL_INVALID_ENUM";
        case GL_INVALID_VALUE: return "GL_INVALID_VALUE";
        case GL_INVALID_OPERATION: return "GL_INVALID_OPERATION";
        case GL_OUT_OF_MEMORY: return "GL_OUT_OF_MEMORY";
        case GL_INVALID_FRAMEBUFFER_OPERATION: return "GL_INVALID_FRAMEBUFFER_OPERATION";
        default: return "GL error " + std::to_string(e);
    }
}

} // namespace detail

/// @brief The OpenGL backend (see the file comment for the memory mapping and the thread rules).
class gl_backend {
public:
    /// @brief Behaviour switches.
    struct options {
        bool force_traditional = false;  ///< act as if persistent mapping were missing (shadow copies; reported)
        bool force_no_dsa = false;       ///< use bind-to-target calls even where DSA exists
        bool check_thread = true;        ///< throw errc::wrong_thread for GL calls off the context thread
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
    /// @throws std::system_error unsupported: no current context, GL functions not loaded, GL < 4.3
    gl_backend() : gl_backend(options{}) {}
    /// @brief As the default constructor, with behaviour switches.
    /// @throws std::system_error unsupported: no current context, GL functions not loaded, GL < 4.3
    explicit gl_backend(options opt) : opt_(opt), state_(std::make_shared<detail::gl_shared_state>()) {
        state_->owner.store(std::this_thread::get_id());
#if defined(GLAD_GL_H_)
        if (glad_glGetString == nullptr || glad_glGetIntegerv == nullptr)
            throw_error(errc::unsupported, "unibuf: gl_backend: the GL functions are not loaded; create an "
                                           "egl_context, or call gladLoadGL(...) on your context first");
#endif
        const auto* version = reinterpret_cast<const char*>(glGetString(GL_VERSION));
        if (version == nullptr)
            throw_error(errc::unsupported, "unibuf: gl_backend: no OpenGL context is current on this thread");
        caps_.version = version;
        const auto* vendor = reinterpret_cast<const char*>(glGetString(GL_VENDOR));
        const auto* renderer = reinterpret_cast<const char*>(glGetString(GL_RENDERER));
        caps_.vendor = vendor != nullptr ? vendor : "";
        caps_.renderer = renderer != nullptr ? renderer : "";
        GLint v = 0;
        glGetIntegerv(GL_MAJOR_VERSION, &v);
        caps_.major = v;
        glGetIntegerv(GL_MINOR_VERSION, &v);
        caps_.minor = v;
        if (caps_.major * 10 + caps_.minor < 43)
            throw_error(errc::unsupported, "unibuf: gl_backend needs OpenGL 4.3 (compute shaders, shader storage "
                                           "buffers); the current context is " + caps_.version + " (" + caps_.renderer + ")");
        GLint n = 0;
        glGetIntegerv(GL_NUM_EXTENSIONS, &n);
        bool arb_storage = false;
        bool arb_dsa = false;
        for (GLint i = 0; i < n; ++i) {
            const auto* e = reinterpret_cast<const char*>(glGetStringi(GL_EXTENSIONS, static_cast<GLuint>(i)));
            if (e == nullptr) continue;
            const std::string_view ext(e);
            arb_storage = arb_storage || ext == "GL_ARB_buffer_storage";
            arb_dsa = arb_dsa || ext == "GL_ARB_direct_state_access";
        }
        caps_.buffer_storage = caps_.major * 10 + caps_.minor >= 44 || arb_storage;
#if defined(GL_VERSION_4_5)
        caps_.direct_state_access = caps_.major * 10 + caps_.minor >= 45 || arb_dsa;
#endif
#if defined(GLAD_GL_H_)
        if (caps_.buffer_storage && glad_glBufferStorage == nullptr) caps_.buffer_storage = false;
#  if defined(GL_VERSION_4_5)
        if (caps_.direct_state_access && glad_glNamedBufferStorage == nullptr) caps_.direct_state_access = false;
#  endif
#endif
        GLint64 v64 = 0;
        glGetIntegerv(GL_SHADER_STORAGE_BUFFER_OFFSET_ALIGNMENT, &v);
        caps_.storage_offset_alignment = static_cast<std::uint64_t>(std::max(v, 1));
        glGetIntegerv(GL_UNIFORM_BUFFER_OFFSET_ALIGNMENT, &v);
        caps_.uniform_offset_alignment = static_cast<std::uint64_t>(std::max(v, 1));
        glGetInteger64v(GL_MAX_SHADER_STORAGE_BLOCK_SIZE, &v64);
        caps_.max_storage_block_size = static_cast<std::uint64_t>(v64);
        glGetIntegerv(GL_MAX_SHADER_STORAGE_BUFFER_BINDINGS, &v);
        caps_.max_storage_bindings = static_cast<std::uint32_t>(v);
        glGetInteger64v(GL_MAX_UNIFORM_BLOCK_SIZE, &v64);
        caps_.max_uniform_block_size = static_cast<std::uint64_t>(v64);
        for (GLuint i = 0; i < 3; ++i) {
            glGetIntegeri_v(GL_MAX_COMPUTE_WORK_GROUP_COUNT, i, &v);
            caps_.max_groups[i] = static_cast<std::uint32_t>(v);
        }
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
                (void)wait_idle_impl(default_wait_timeout);
            } catch (...) {
                // a lost context: nothing to wait for; the objects go all the same
            }
#else
            (void)wait_idle_impl(default_wait_timeout);
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

    /// @brief The GL storage for `req`: a pure function of the request, the capabilities and the options.
    [[nodiscard]] gl_storage_plan decide(const memory_request& req) const {
        gl_storage_plan p;
        allocation_report& r = p.report;
        r.requested = req.placement;
        r.memory_type = -1;
        const GLbitfield access = (req.host_read ? GLbitfield{GL_MAP_READ_BIT} : 0u) |
                                  (req.host_write ? GLbitfield{GL_MAP_WRITE_BIT} : 0u);
        if (!caps_.buffer_storage || opt_.force_traditional) {
            p.mode = gl_storage_mode::shadow;
            p.usage_hint = !req.host_read ? GL_STREAM_DRAW : (!req.host_write ? GL_STREAM_READ : GL_DYNAMIC_DRAW);
            r.chosen = placement_kind::device;
            r.zero_copy = false;
            r.host_coherent = true;
            r.host_cached = true;
            r.fallbacks.push_back(
                std::string(opt_.force_traditional ? "persistent mapping disabled (gl_backend::options::force_traditional)"
                                                   : "no persistent mapping (GL " + std::to_string(caps_.major) + "." +
                                                         std::to_string(caps_.minor) + " without GL_ARB_buffer_storage)") +
                ": the host view of this " + std::string(to_string(req.placement)) +
                " buffer is a shadow copy; flush = glBufferSubData, invalidate = glGetBufferSubData");
            r.reason = "traditional GL buffer (glBufferData) with a host shadow copy";
            return p;
        }
        if (req.placement == placement_kind::device) {
            p.mode = gl_storage_mode::staged;
            p.storage_flags = 0;  // no map bits: memory the host never maps, GPU copies only
            p.staging_storage_flags = access | GL_MAP_PERSISTENT_BIT | GL_MAP_COHERENT_BIT | GL_CLIENT_STORAGE_BIT;
            p.staging_map_flags = access | GL_MAP_PERSISTENT_BIT | GL_MAP_COHERENT_BIT;
            r.chosen = placement_kind::device;
            r.zero_copy = false;
            r.host_coherent = true;
            r.host_cached = true;
            r.reason = "device placement: glBufferStorage without map bits; host access through a persistent-mapped "
                       "staging buffer (GL_CLIENT_STORAGE_BIT) and glCopyNamedBufferSubData";
            return p;
        }
        p.mode = gl_storage_mode::persistent;
        const bool coherent = !req.explicit_flush;
        bool client = false;
        std::string where;
        switch (req.placement) {
            case placement_kind::host:
                client = true;
                where = "placement::host: GL_CLIENT_STORAGE_BIT asks for system memory";
                break;
            case placement_kind::device_mapped:
                where = "placement::device_mapped: no GL_CLIENT_STORAGE_BIT, so the driver may place it in "
                        "device memory (GL cannot require it)";
                break;
            default:
                client = req.host_read && !req.write_combined;
                where = client ? "placement::automatic, host reads: GL_CLIENT_STORAGE_BIT for cached system memory"
                               : "placement::automatic, host only writes: no GL_CLIENT_STORAGE_BIT, the driver chooses";
                break;
        }
        p.storage_flags = access | GL_MAP_PERSISTENT_BIT | (coherent ? GLbitfield{GL_MAP_COHERENT_BIT} : 0u) |
                          (client ? GLbitfield{GL_CLIENT_STORAGE_BIT} : 0u);
        p.map_flags = access | GL_MAP_PERSISTENT_BIT |
                      (coherent ? GLbitfield{GL_MAP_COHERENT_BIT}
                                : (req.host_write ? GLbitfield{GL_MAP_FLUSH_EXPLICIT_BIT} : 0u));
        r.chosen = client ? placement_kind::host
                          : (req.placement == placement_kind::automatic ? placement_kind::device_mapped : req.placement);
        r.zero_copy = true;
        r.host_coherent = coherent;
        r.host_cached = client;
        r.reason = "persistent-mapped glBufferStorage (" + where + ")" +
                   (req.write_combined ? "; write-combined: write bit only" : "") +
                   (coherent ? "; GL_MAP_COHERENT_BIT" : "; non-coherent: explicit flush / client-mapped barrier");
        return p;
    }

    /// @brief Allocates for `req`. @throws std::system_error invalid_argument (0 bytes), out_of_memory,
    /// mapping_failed, wrong_thread
    [[nodiscard]] allocation allocate(const memory_request& req) {
        std::error_code ec;
        std::string why;
        allocation a = allocate_impl(req, ec, why);
        if (ec) throw_error(static_cast<errc>(ec.value()), why);
        return a;
    }
    /// @brief Allocates for `req`; an empty allocation and `ec` on failure (wrong_thread included).
    [[nodiscard]] allocation try_allocate(const memory_request& req, std::error_code& ec) {
        std::string why;
        return allocate_impl(req, ec, why);
    }

    /// @brief Host writes in `[off, off+n)` to the GL buffer: nothing (coherent mapping),
    /// `glFlushMappedNamedBufferRange` (explicit flush), a staging copy (returns its fence) or
    /// `glBufferSubData` (shadow). @throws std::system_error out_of_range, wrong_thread
    fence flush(allocation& a, std::uint64_t off, std::uint64_t n) {
        require_thread("flush");
        check(a, off, n, "flush");
        state_->collect();
        if (n == 0) return {};
        switch (a.plan_.mode) {
            case gl_storage_mode::persistent:
                if ((a.plan_.map_flags & GL_MAP_FLUSH_EXPLICIT_BIT) != 0) calls_.flush_mapped(a.buffer_, off, n);
                return {};
            case gl_storage_mode::staged:
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
    /// for, or `glGetBufferSubData` (shadow). @throws std::system_error timeout, out_of_range, wrong_thread
    void invalidate(allocation& a, std::uint64_t off, std::uint64_t n,
                    std::chrono::nanoseconds timeout = default_wait_timeout) {
        require_thread("invalidate");
        check(a, off, n, "invalidate");
        state_->collect();
        if (n == 0) return;
        switch (a.plan_.mode) {
            case gl_storage_mode::persistent:
                if ((a.plan_.storage_flags & GL_MAP_COHERENT_BIT) == 0) {
                    glMemoryBarrier(GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT);
                    wait_or_throw(make_fence(), "invalidate (non-coherent mapping)", timeout);
                }
                return;
            case gl_storage_mode::staged:
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
    /// (overlapping ranges of one buffer), wrong_thread
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
    /// offset, too many bytes of push constants), out_of_range, wrong_thread
    fence dispatch(const gl_kernel& k, dispatch_size groups, std::span<const bound_range<gl_backend>> ranges,
                   std::span<const std::byte> push, std::span<const fence> after);

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
        return poll(*f.sync_, static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count())));
    }
    /// @brief Waits (bounded) for all submitted work; false on timeout. @throws wrong_thread
    [[nodiscard]] bool wait_idle(std::chrono::nanoseconds timeout = default_wait_timeout) {
        require_thread("wait_idle");
        return wait_idle_impl(timeout);
    }

    /// @brief The buffer calls as this backend makes them (DSA or bindings); for tests and tools.
    [[nodiscard]] GLint buffer_parameter(GLuint buffer, GLenum pname) {
        require_thread("buffer_parameter");
        return calls_.parameter(buffer, pname);
    }

private:
    friend class gl_kernel;

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

    // The range test cannot wrap: `off + n` is never formed.
    void check(const allocation& a, std::uint64_t off, std::uint64_t n, const char* what) const {
        if (!a)
            throw_error(errc::invalid_argument, std::string("unibuf: gl_backend: ") + what + " of " + std::to_string(n) +
                                                    " bytes at offset " + std::to_string(off) +
                                                    " in an empty (moved-from or failed) allocation");
        if (off > a.size_ || n > a.size_ - off)
            throw_error(errc::out_of_range, std::string("unibuf: gl_backend: ") + what + " of " + std::to_string(n) +
                                                " bytes at offset " + std::to_string(off) + " in an allocation of " +
                                                std::to_string(a.size_) + " bytes");
    }

    fence make_fence() {
        GLsync s = glFenceSync(GL_SYNC_GPU_COMMANDS_COMPLETE, 0);
        return fence(std::make_shared<detail::gl_sync>(s, ++issued_, state_));
    }

    bool poll(detail::gl_sync& s, std::uint64_t timeout_ns) {
        if (s.sync == nullptr) return true;  // seen signaled before (another context's watermark)
        const GLenum r = glClientWaitSync(s.sync, GL_SYNC_FLUSH_COMMANDS_BIT, timeout_ns);
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
        return false;
    }

    void wait_or_throw(const fence& f, const char* what, std::chrono::nanoseconds timeout) {
        if (!poll(*f.sync_, static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count()))))
            throw_error(errc::timeout, std::string("unibuf: gl_backend: ") + what + " did not complete within " +
                                           detail::ms_text(timeout) +
                                           " ms");
    }

    bool wait_idle_impl(std::chrono::nanoseconds timeout) {
        fence f = make_fence();
        return poll(*f.sync_, static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count())));
    }

    static void drain_errors() noexcept {
        for (int i = 0; i < 16 && glGetError() != GL_NO_ERROR; ++i) {
        }
    }

    allocation allocate_impl(const memory_request& req, std::error_code& ec, std::string& why) {
        ec.clear();
        if (opt_.check_thread && !state_->on_owner()) {
            ec = errc::wrong_thread;
            why = "unibuf: gl_backend::allocate was called off the context thread (thread " +
                  detail::thread_name(std::this_thread::get_id()) + "; the context is current on thread " +
                  detail::thread_name(state_->owner.load()) + ")";
            return {};
        }
        if (req.size_bytes == 0) {
            ec = errc::invalid_argument;
            why = "unibuf: gl_backend: an allocation of 0 bytes was requested; buffers need at least one element";
            return {};
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
            return {};
        }
        state_->collect();
        allocation a;
        a.state_ = state_;
        a.size_ = req.size_bytes;
        a.plan_ = decide(req);
        const gl_storage_plan& p = a.plan_;
        const std::string size = std::to_string(req.size_bytes) + " bytes";
        drain_errors();
        auto failed = [&](const char* call) {
            const GLenum e = glGetError();
            if (e == GL_NO_ERROR) return false;
            ec = e == GL_OUT_OF_MEMORY ? errc::out_of_memory : errc::unsupported;
            why = std::string("unibuf: gl_backend: ") + call + " of " + size + " failed with " + detail::gl_error_name(e) +
                  " (" + caps_.renderer + ")";
            return true;
        };
        a.buffer_ = calls_.create();
        if (p.mode == gl_storage_mode::shadow) {
            calls_.data(a.buffer_, req.size_bytes, p.usage_hint);
            if (failed("glBufferData")) return {};
            a.shadow_.reset(new (std::nothrow) std::byte[req.size_bytes]());
            if (!a.shadow_) {
                ec = errc::out_of_memory;
                why = "unibuf: gl_backend: the host shadow copy of " + size + " could not be allocated";
                return {};
            }
            return a;
        }
        calls_.storage(a.buffer_, req.size_bytes, p.storage_flags);
        if (failed("glBufferStorage")) return {};
        GLuint mapped_buffer = a.buffer_;
        GLbitfield map_flags = p.map_flags;
        if (p.mode == gl_storage_mode::staged) {
            a.staging_ = calls_.create();
            calls_.storage(a.staging_, req.size_bytes, p.staging_storage_flags);
            if (failed("glBufferStorage (staging)")) return {};
            mapped_buffer = a.staging_;
            map_flags = p.staging_map_flags;
        }
        a.mapped_ = static_cast<std::byte*>(calls_.map(mapped_buffer, req.size_bytes, map_flags));
        if (a.mapped_ == nullptr) {
            const GLenum e = glGetError();
            ec = errc::mapping_failed;
            why = "unibuf: gl_backend: glMapBufferRange of " + size + " (persistent) failed with " +
                  detail::gl_error_name(e) + " (" + caps_.renderer + ")";
            return {};
        }
        return a;
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
};

/// @brief A GL compute program built from GLSL source (e.g. `kernels::saxpy_glsl`) on a backend's
/// context, with what the dispatch needs to know: the storage-buffer bindings it uses and the size
/// of its uniform block at binding 0 (the push constants). Move-only; create and destroy on the
/// context thread (destroyed elsewhere, it is queued for it).
///
/// Dispatches larger than GL_MAX_COMPUTE_WORK_GROUP_COUNT are split (GL has no dispatch base):
/// the source's `gl_WorkGroupID`, `gl_GlobalInvocationID` and `gl_NumWorkGroups` are rewritten to
/// add each part's base group and to give the whole dispatch's count, through two uniforms
/// (`unibuf_group_base`, `unibuf_group_count`) declared after the `#version`/`#extension` lines.
class gl_kernel {
public:
    gl_kernel() = default;

    /// @brief Compiles and links `glsl` as a compute shader.
    /// @throws std::system_error invalid_argument with the compiler or linker log; wrong_thread
    gl_kernel(gl_backend& backend, std::string_view glsl, std::string name = "kernel") : name_(std::move(name)) {
        backend.require_thread("compile kernel");
        backend.state_->collect();
        std::string prepared;
        if (detail::gl_add_group_base(glsl, prepared)) glsl = prepared;
        const GLuint shader = glCreateShader(GL_COMPUTE_SHADER);
        const GLchar* src = glsl.data();
        const auto len = static_cast<GLint>(glsl.size());
        glShaderSource(shader, 1, &src, &len);
        glCompileShader(shader);
        GLint ok = 0;
        glGetShaderiv(shader, GL_COMPILE_STATUS, &ok);
        if (ok == GL_FALSE) {
            const std::string log = info_log(shader, true);
            glDeleteShader(shader);
            throw_error(errc::invalid_argument, "unibuf: gl_kernel '" + name_ + "': GLSL compile failed: " + log);
        }
        const GLuint program = glCreateProgram();
        glAttachShader(program, shader);
        glLinkProgram(program);
        glDetachShader(program, shader);
        glDeleteShader(shader);
        glGetProgramiv(program, GL_LINK_STATUS, &ok);
        if (ok == GL_FALSE) {
            const std::string log = info_log(program, false);
            glDeleteProgram(program);
            throw_error(errc::invalid_argument, "unibuf: gl_kernel '" + name_ + "': link failed: " + log);
        }
        state_ = backend.state_;
        program_ = program;
        GLint size[3] = {0, 0, 0};
        glGetProgramiv(program, GL_COMPUTE_WORK_GROUP_SIZE, size);
        local_size_ = {static_cast<std::uint32_t>(size[0]), static_cast<std::uint32_t>(size[1]),
                       static_cast<std::uint32_t>(size[2])};
        GLint count = 0;
        glGetProgramInterfaceiv(program, GL_SHADER_STORAGE_BLOCK, GL_ACTIVE_RESOURCES, &count);
        for (GLint i = 0; i < count; ++i) {
            const GLenum prop = GL_BUFFER_BINDING;
            GLint binding = 0;
            glGetProgramResourceiv(program, GL_SHADER_STORAGE_BLOCK, static_cast<GLuint>(i), 1, &prop, 1, nullptr, &binding);
            storage_bindings_.push_back(static_cast<std::uint32_t>(binding));
        }
        std::sort(storage_bindings_.begin(), storage_bindings_.end());
        base_location_ = glGetUniformLocation(program, "unibuf_group_base");
        count_location_ = glGetUniformLocation(program, "unibuf_group_count");
        glGetProgramInterfaceiv(program, GL_UNIFORM_BLOCK, GL_ACTIVE_RESOURCES, &count);
        for (GLint i = 0; i < count; ++i) {
            const GLenum props[2] = {GL_BUFFER_BINDING, GL_BUFFER_DATA_SIZE};
            GLint vals[2] = {0, 0};
            glGetProgramResourceiv(program, GL_UNIFORM_BLOCK, static_cast<GLuint>(i), 2, props, 2, nullptr, vals);
            if (vals[0] == 0) push_size_ = static_cast<std::uint32_t>(vals[1]);
        }
    }

    gl_kernel(gl_kernel&& o) noexcept
        : state_(std::move(o.state_)), program_(std::exchange(o.program_, 0)), name_(std::move(o.name_)),
          local_size_(o.local_size_), storage_bindings_(std::move(o.storage_bindings_)),
          push_size_(std::exchange(o.push_size_, 0)), base_location_(o.base_location_), count_location_(o.count_location_),
          base_(o.base_), count_(o.count_) {}
    gl_kernel& operator=(gl_kernel&& o) noexcept {
        if (this != &o) {
            reset();
            state_ = std::move(o.state_);
            program_ = std::exchange(o.program_, 0);
            name_ = std::move(o.name_);
            local_size_ = o.local_size_;
            storage_bindings_ = std::move(o.storage_bindings_);
            push_size_ = std::exchange(o.push_size_, 0);
            base_location_ = o.base_location_;
            count_location_ = o.count_location_;
            base_ = o.base_;
            count_ = o.count_;
        }
        return *this;
    }
    gl_kernel(const gl_kernel&) = delete;
    gl_kernel& operator=(const gl_kernel&) = delete;
    ~gl_kernel() { reset(); }

    /// @brief Deletes the program (on the context thread, or queued for it).
    void reset() noexcept {
        if (state_ && program_ != 0) state_->retire_program(program_);
        state_.reset();
        program_ = 0;
    }

    /// @brief The GL program name.
    [[nodiscard]] GLuint program() const noexcept { return program_; }
    /// @brief The name given at construction (used in error messages).
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    /// @brief `local_size_x/y/z` of the shader.
    [[nodiscard]] const std::array<std::uint32_t, 3>& local_size() const noexcept { return local_size_; }
    /// @brief Storage-buffer binding points the program uses, ascending.
    [[nodiscard]] const std::vector<std::uint32_t>& storage_bindings() const noexcept { return storage_bindings_; }
    /// @brief Bytes of the uniform block at binding 0 (the push constants); 0 when there is none.
    [[nodiscard]] std::uint32_t push_size() const noexcept { return push_size_; }
    /// @brief False for an empty (default or moved-from) kernel.
    [[nodiscard]] explicit operator bool() const noexcept { return program_ != 0; }

private:
    static std::string info_log(GLuint object, bool shader) {
        GLint n = 0;
        if (shader) {
            glGetShaderiv(object, GL_INFO_LOG_LENGTH, &n);
        } else {
            glGetProgramiv(object, GL_INFO_LOG_LENGTH, &n);
        }
        std::string log(static_cast<std::size_t>(std::max(n, 1)), '\0');
        GLsizei got = 0;
        if (shader) {
            glGetShaderInfoLog(object, static_cast<GLsizei>(log.size()), &got, log.data());
        } else {
            glGetProgramInfoLog(object, static_cast<GLsizei>(log.size()), &got, log.data());
        }
        log.resize(static_cast<std::size_t>(std::max(got, 0)));
        return log;
    }

    std::shared_ptr<detail::gl_shared_state> state_;
    GLuint program_ = 0;
    std::string name_;
    std::array<std::uint32_t, 3> local_size_{};
    std::vector<std::uint32_t> storage_bindings_;
    std::uint32_t push_size_ = 0;
    // Group base / count uniforms of the rewritten source (-1: unused), with their current values.
    friend class gl_backend;
    GLint base_location_ = -1;
    GLint count_location_ = -1;
    mutable std::array<std::uint32_t, 3> base_{};   // a cache of uniform values: dispatch takes a const kernel
    mutable std::array<std::uint32_t, 3> count_{};
};

inline gl_backend::fence gl_backend::dispatch(const gl_kernel& k, dispatch_size groups,
                                              std::span<const bound_range<gl_backend>> ranges,
                                              std::span<const std::byte> push, std::span<const fence> after) {
    require_thread("dispatch");
    state_->collect();
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
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        const auto& r = ranges[i];
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
    for (const fence& f : after)
        if (f.sync_ && f.sync_->ctx != state_ && f.sync_->sync != nullptr)
            glWaitSync(f.sync_->sync, 0, GL_TIMEOUT_IGNORED);

    glUseProgram(k.program());
    for (std::size_t i = 0; i < ranges.size(); ++i)
        glBindBufferRange(GL_SHADER_STORAGE_BUFFER, static_cast<GLuint>(i), ranges[i].allocation->buffer_,
                          static_cast<GLintptr>(ranges[i].offset), static_cast<GLsizeiptr>(ranges[i].size));
    if (k.push_size() > 0) {
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
    // Above GL_MAX_COMPUTE_WORK_GROUP_COUNT: several parts, each told its base (see gl_kernel).
    const std::array<std::uint32_t, 3> total{groups.x, groups.y, groups.z};
    if (k.count_location_ >= 0 && k.count_ != total) {
        glProgramUniform3ui(k.program(), k.count_location_, groups.x, groups.y, groups.z);
        k.count_ = total;
    }
    // The bases count in 64 bits: a 32-bit base + limit would wrap for counts near 2^32.
    const std::uint64_t lim[3] = {std::max<std::uint32_t>(1, caps_.max_groups[0]),
                                  std::max<std::uint32_t>(1, caps_.max_groups[1]),
                                  std::max<std::uint32_t>(1, caps_.max_groups[2])};
    for (std::uint64_t bz = 0; bz < groups.z; bz += lim[2])
        for (std::uint64_t by = 0; by < groups.y; by += lim[1])
            for (std::uint64_t bx = 0; bx < groups.x; bx += lim[0]) {
                const std::array<std::uint32_t, 3> base{static_cast<std::uint32_t>(bx), static_cast<std::uint32_t>(by),
                                                        static_cast<std::uint32_t>(bz)};
                if (k.base_location_ >= 0 && k.base_ != base) {
                    glProgramUniform3ui(k.program(), k.base_location_, base[0], base[1], base[2]);
                    k.base_ = base;
                }
                glDispatchCompute(static_cast<GLuint>(std::min<std::uint64_t>(lim[0], groups.x - bx)),
                                  static_cast<GLuint>(std::min<std::uint64_t>(lim[1], groups.y - by)),
                                  static_cast<GLuint>(std::min<std::uint64_t>(lim[2], groups.z - bz)));
            }
    glMemoryBarrier(GL_SHADER_STORAGE_BARRIER_BIT | GL_BUFFER_UPDATE_BARRIER_BIT | GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT);
    return make_fence();
}

} // namespace unibuf
