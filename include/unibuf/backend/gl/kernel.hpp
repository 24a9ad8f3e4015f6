/// @file kernel.hpp
/// @brief `gl_kernel`: a GL compute program built from GLSL source on a `gl_backend`'s context,
/// with what a dispatch needs to know about it, and the dispatch of its work groups in parts.
///
/// Built on a backend (`gl_kernel k(gpu, kernels::saxpy_glsl, "saxpy")`) and run by it
/// (`unibuf::dispatch(gpu, k, ...)`); `gl_backend.hpp` includes this header.
#pragma once

#include "loader.hpp"

#include "context_state.hpp"
#include "glsl_rewrite.hpp"

#include "../../core/error.hpp"
#include "../../core/usage.hpp"

#include <algorithm>
#include <array>
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unibuf {

class gl_backend;

/// @brief A GL compute program built from GLSL source (e.g. `kernels::saxpy_glsl`) on a backend's
/// context, with what the dispatch needs to know: the storage-buffer bindings it uses and the size
/// of its uniform block at binding 0 (the push constants). Move-only; create and destroy on the
/// context thread (destroyed elsewhere, it is queued for it).
///
/// Dispatches larger than GL_MAX_COMPUTE_WORK_GROUP_COUNT are split (GL has no dispatch base):
/// the source's `gl_WorkGroupID`, `gl_GlobalInvocationID` and `gl_NumWorkGroups` are rewritten to
/// add each part's base group and to give the whole dispatch's count, through two uniforms
/// (`unibuf_group_base`, `unibuf_group_count`) declared after the `#version`/`#extension` lines
/// (see `glsl_rewrite.hpp`).
class gl_kernel {
public:
    /// @brief An empty kernel (false; a dispatch of it throws invalid_argument).
    gl_kernel() = default;

    /// @brief Compiles and links `glsl` as a compute shader on the context of `backend` (a
    /// `gl_backend`; the template only defers the use of its members to where it is complete).
    /// @throws std::system_error invalid_argument with the compiler or linker log; wrong_thread
    template <std::same_as<gl_backend> Backend>
    gl_kernel(Backend& backend, std::string_view glsl, std::string name = "kernel")
        : gl_kernel(backend.checked_state("compile kernel"), glsl, std::move(name)) {}

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
    friend class gl_backend;

    // The work of the public constructor, once the backend checked the thread.
    gl_kernel(std::shared_ptr<detail::gl_shared_state> state, std::string_view glsl, std::string name)
        : name_(std::move(name)) {
        std::string prepared;
        if (detail::gl_add_group_base(glsl, prepared)) glsl = prepared;
        const GLuint program = link_program(compile_shader(glsl));
        state_ = std::move(state);
        program_ = program;
        reflect(program);
    }

    /// Step 1: the compiled compute shader. @throws invalid_argument with the compiler's log
    GLuint compile_shader(std::string_view glsl) const {
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
        return shader;
    }

    /// Step 2: the linked program; the shader is deleted. @throws invalid_argument with the linker's log
    GLuint link_program(GLuint shader) const {
        const GLuint program = glCreateProgram();
        glAttachShader(program, shader);
        glLinkProgram(program);
        glDetachShader(program, shader);
        glDeleteShader(shader);
        GLint ok = 0;
        glGetProgramiv(program, GL_LINK_STATUS, &ok);
        if (ok == GL_FALSE) {
            const std::string log = info_log(program, false);
            glDeleteProgram(program);
            throw_error(errc::invalid_argument, "unibuf: gl_kernel '" + name_ + "': link failed: " + log);
        }
        return program;
    }

    /// Step 3: what the dispatch needs: local size, storage bindings, group uniforms, push size.
    void reflect(GLuint program) {
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

    // Run by gl_backend::dispatch with the program current and its bindings made: the groups as
    // glDispatchCompute calls of at most `max_groups` each, each told its base (see the class comment).
    void run_groups(dispatch_size groups, const std::array<std::uint32_t, 3>& max_groups) const {
        const std::array<std::uint32_t, 3> total{groups.x, groups.y, groups.z};
        if (count_location_ >= 0 && count_ != total) {
            glProgramUniform3ui(program_, count_location_, groups.x, groups.y, groups.z);
            count_ = total;
        }
        // The bases count in 64 bits: a 32-bit base + limit would wrap for counts near 2^32.
        const std::uint64_t lim[3] = {std::max<std::uint32_t>(1, max_groups[0]), std::max<std::uint32_t>(1, max_groups[1]),
                                      std::max<std::uint32_t>(1, max_groups[2])};
        for (std::uint64_t bz = 0; bz < groups.z; bz += lim[2])
            for (std::uint64_t by = 0; by < groups.y; by += lim[1])
                for (std::uint64_t bx = 0; bx < groups.x; bx += lim[0]) {
                    const std::array<std::uint32_t, 3> base{static_cast<std::uint32_t>(bx), static_cast<std::uint32_t>(by),
                                                            static_cast<std::uint32_t>(bz)};
                    if (base_location_ >= 0 && base_ != base) {
                        glProgramUniform3ui(program_, base_location_, base[0], base[1], base[2]);
                        base_ = base;
                    }
                    glDispatchCompute(static_cast<GLuint>(std::min<std::uint64_t>(lim[0], groups.x - bx)),
                                      static_cast<GLuint>(std::min<std::uint64_t>(lim[1], groups.y - by)),
                                      static_cast<GLuint>(std::min<std::uint64_t>(lim[2], groups.z - bz)));
                }
    }

    std::shared_ptr<detail::gl_shared_state> state_;
    GLuint program_ = 0;
    std::string name_;
    std::array<std::uint32_t, 3> local_size_{};
    std::vector<std::uint32_t> storage_bindings_;
    std::uint32_t push_size_ = 0;
    // Group base / count uniforms of the rewritten source (-1: unused), with their current values.
    GLint base_location_ = -1;
    GLint count_location_ = -1;
    mutable std::array<std::uint32_t, 3> base_{};   // a cache of uniform values: dispatch takes a const kernel
    mutable std::array<std::uint32_t, 3> count_{};
};

} // namespace unibuf
