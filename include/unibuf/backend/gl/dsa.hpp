/// @file dsa.hpp
/// @brief The buffer calls of the OpenGL backend, made through direct state access (GL 4.5 or
/// `GL_ARB_direct_state_access`) where the context and the loader have it, through the
/// `GL_COPY_READ_BUFFER` / `GL_COPY_WRITE_BUFFER` bindings otherwise.
///
/// Without DSA every call binds the buffer it works on to one of the two copy targets; the
/// backend's users see those bindings change (see the thread rules in `gl_backend.hpp`). The named
/// calls are compiled in only where the loader declares GL 4.5 (`GL_VERSION_4_5`).
#pragma once

#include "loader.hpp"

#include <cstdint>

namespace unibuf::detail {

/// @brief The buffer calls, through DSA (GL 4.5 / ARB_direct_state_access) or the copy bindings.
/// Every call runs on the context thread.
struct gl_buffer_calls {
    bool dsa = false;  ///< the named (DSA) calls; the copy bindings when false

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

} // namespace unibuf::detail
