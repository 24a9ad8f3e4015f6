/// @file context_state.hpp
/// @brief What a `gl_backend` shares with everything it made (allocations, kernels, fences): the
/// context thread, the completion watermark of its fences, and the GL objects released off the
/// context thread, deleted there later.
///
/// A GL object may only be deleted on the thread where its context is current. An allocation,
/// kernel or fence destroyed on another thread hands its names to this state; the backend deletes
/// them at its next call on the context thread (`collect`). Once the backend is gone, names
/// released later are left to the context.
#pragma once

#include "loader.hpp"

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace unibuf::detail {

/// @brief A thread id as text, for error messages.
inline std::string thread_name(std::thread::id id) {
    std::ostringstream s;
    s << id;
    return s.str();
}

/// @brief State shared by a backend, its allocations, kernels and fences: the context thread, the
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

    /// @brief True on the context thread.
    [[nodiscard]] bool on_owner() const noexcept { return std::this_thread::get_id() == owner.load(std::memory_order_relaxed); }

    /// @brief Deletes now (context thread) or queues for the context thread; drops them when the backend is gone.
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
    /// @brief As `retire_buffers`, for a program.
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
    /// @brief As `retire_buffers`, for a sync object.
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
    /// @brief Context thread: deletes what other threads released.
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

/// @brief One GL fence sync, shared by every copy of a `gl_backend::fence`.
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

} // namespace unibuf::detail
