/// @file debug.hpp
/// @brief `gl_debug_log`: collects the GL debug output of the current context.
///
/// @code
/// unibuf::egl_context ctx({.debug = true});
/// unibuf::gl_debug_log log;                 // glDebugMessageCallback on the current context
/// ... GL work ...
/// for (const auto& m : log.take_errors()) std::puts(unibuf::gl_debug_log::describe(m).c_str());
/// @endcode
#pragma once

#include "loader.hpp"

#include "../../core/error.hpp"

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief Installs a `glDebugMessageCallback` on the context current at construction and keeps
/// the messages. Errors (`GL_DEBUG_TYPE_ERROR`) are all kept; other messages up to `max_other`,
/// then only counted (NVIDIA reports every buffer placement as `GL_DEBUG_TYPE_OTHER`). Construct,
/// and destroy, on the context's thread; `take_*` and the counters may be called from any thread.
/// A moved-from log is empty: `take_*` return nothing and the counters are 0 (the messages go to
/// the log it was moved to).
class gl_debug_log {
public:
    /// @brief One debug message.
    struct message {
        GLenum source = 0;
        GLenum type = 0;
        GLuint id = 0;
        GLenum severity = 0;
        std::string text;
    };

    /// @brief Installs the callback and enables `GL_DEBUG_OUTPUT` (synchronous output, so a message
    /// arrives on the thread and inside the call that caused it, when `synchronous`).
    /// @throws std::system_error unsupported when the context has no debug output (GL 4.3 / KHR_debug)
    explicit gl_debug_log(bool synchronous = true, std::size_t max_other = 256)
        : state_(std::make_unique<state>()) {
        state_->max_other = max_other;
        GLint major = 0;
        glGetIntegerv(GL_MAJOR_VERSION, &major);
        GLint minor = 0;
        glGetIntegerv(GL_MINOR_VERSION, &minor);
        if (major * 10 + minor < 43)
            throw_error(errc::unsupported, "unibuf: gl_debug_log needs GL 4.3 debug output; the current context is GL " +
                                               std::to_string(major) + "." + std::to_string(minor));
        glEnable(GL_DEBUG_OUTPUT);
        if (synchronous) glEnable(GL_DEBUG_OUTPUT_SYNCHRONOUS);
        glDebugMessageCallback(callback, state_.get());
        glDebugMessageControl(GL_DONT_CARE, GL_DONT_CARE, GL_DONT_CARE, 0, nullptr, GL_TRUE);
    }
    gl_debug_log(gl_debug_log&&) noexcept = default;  // the callback keeps pointing at the moved state
    gl_debug_log& operator=(gl_debug_log&&) = delete;
    gl_debug_log(const gl_debug_log&) = delete;
    gl_debug_log& operator=(const gl_debug_log&) = delete;
    /// @brief Removes the callback (on the context's thread).
    ~gl_debug_log() {
        if (state_) glDebugMessageCallback(nullptr, nullptr);
    }

    /// @brief The error messages since the last call, removed from the log (none when moved from).
    [[nodiscard]] std::vector<message> take_errors() {
        if (!state_) return {};
        std::lock_guard lk(state_->m);
        return std::exchange(state_->errors, {});
    }
    /// @brief The other messages kept since the last call, removed from the log (none when moved from).
    [[nodiscard]] std::vector<message> take_other() {
        if (!state_) return {};
        std::lock_guard lk(state_->m);
        state_->other_count = 0;
        return std::exchange(state_->other, {});
    }
    /// @brief Number of error messages not yet taken (0 when moved from).
    [[nodiscard]] std::size_t error_count() const {
        if (!state_) return 0;
        std::lock_guard lk(state_->m);
        return state_->errors.size();
    }
    /// @brief Number of other messages since the last `take_other` (kept or only counted; 0 when moved from).
    [[nodiscard]] std::size_t other_count() const {
        if (!state_) return 0;
        std::lock_guard lk(state_->m);
        return state_->other_count;
    }

    /// @brief One line: type, severity, source, id and text.
    [[nodiscard]] static std::string describe(const message& m) {
        return std::string("GL debug ") + type_name(m.type) + " (" + severity_name(m.severity) + ", " +
               source_name(m.source) + ", id " + std::to_string(m.id) + "): " + m.text;
    }

private:
    struct state {
        mutable std::mutex m;
        std::vector<message> errors;
        std::vector<message> other;
        std::size_t other_count = 0;
        std::size_t max_other = 256;
    };

    // GLDEBUGPROC's calling convention is the platform's GL one (APIENTRY on Windows); taking the
    // callback through the GLDEBUGPROC type below keeps it right on every platform.
    static void callback_impl(GLenum source, GLenum type, GLuint id, GLenum severity, GLsizei length,
                              const GLchar* text, const void* user) {
        auto* s = static_cast<state*>(const_cast<void*>(user));
        message m{source, type, id, severity,
                  length >= 0 ? std::string(text, static_cast<std::size_t>(length)) : std::string(text)};
        std::lock_guard lk(s->m);
        if (type == GL_DEBUG_TYPE_ERROR) {
            s->errors.push_back(std::move(m));
        } else {
            ++s->other_count;
            if (s->other.size() < s->max_other) s->other.push_back(std::move(m));
        }
    }
    static inline const GLDEBUGPROC callback = [](GLenum source, GLenum type, GLuint id, GLenum severity,
                                                  GLsizei length, const GLchar* text, const void* user) {
        callback_impl(source, type, id, severity, length, text, user);
    };

    static const char* type_name(GLenum t) {
        switch (t) {
            case GL_DEBUG_TYPE_ERROR: return "error";
            case GL_DEBUG_TYPE_DEPRECATED_BEHAVIOR: return "deprecated behaviour";
            case GL_DEBUG_TYPE_UNDEFINED_BEHAVIOR: return "undefined behaviour";
            case GL_DEBUG_TYPE_PORTABILITY: return "portability";
            case GL_DEBUG_TYPE_PERFORMANCE: return "performance";
            case GL_DEBUG_TYPE_MARKER: return "marker";
            default: return "other";
        }
    }
    static const char* severity_name(GLenum s) {
        switch (s) {
            case GL_DEBUG_SEVERITY_HIGH: return "high";
            case GL_DEBUG_SEVERITY_MEDIUM: return "medium";
            case GL_DEBUG_SEVERITY_LOW: return "low";
            default: return "notification";
        }
    }
    static const char* source_name(GLenum s) {
        switch (s) {
            case GL_DEBUG_SOURCE_API: return "api";
            case GL_DEBUG_SOURCE_SHADER_COMPILER: return "shader compiler";
            case GL_DEBUG_SOURCE_WINDOW_SYSTEM: return "window system";
            case GL_DEBUG_SOURCE_THIRD_PARTY: return "third party";
            case GL_DEBUG_SOURCE_APPLICATION: return "application";
            default: return "other";
        }
    }

    std::unique_ptr<state> state_;  // the callback's user pointer: stable across moves
};

} // namespace unibuf
