/// @file fence_waiter.hpp
/// @brief `vulkan_fence_waiter`: the completion signal of `when_complete` on Vulkan. One thread
/// per device blocks in the driver on the smallest pending fence value; when it completes, the
/// waiters of it and of every smaller value are called (they post their coroutines to their
/// schedulers). No caller's thread waits.
///
/// How it waits: `vulkan_backend::wait(fence, slice)`, i.e. `vkWaitSemaphores` on the timeline
/// value (or `vkWaitForFences` on the VkFence fallback), as the backend's `wait_strategy` says
/// (the default spins `spin_budget`, then sleeps in the driver). Each wait is bounded by `slice`
/// (default 2 ms): a value awaited later that is smaller than the one being waited for is
/// picked up within one slice (the backend does not hand out its semaphores, so the waiter
/// cannot be woken through a second one). Device loss is reported to every pending waiter as
/// the backend's `errc::device_lost` error.
///
/// @code
/// unibuf::vulkan_backend gpu;
/// unibuf::vulkan_fence_waiter waiter(gpu);      // one per device, outlives the waits
/// unibuf::thread_pool pool(2);
/// // in a task: co_await unibuf::when_complete(waiter, fence, pool);
/// @endcode
#pragma once

#include "../../backend/vulkan/vulkan_backend.hpp"
#include "../../core/error.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace unibuf {

/// @brief One waiter thread for one `vulkan_backend` (see the file comment); a `FenceNotifier`.
/// Thread-safe. Destroy it after the waits it serves ended: callbacks still pending then are
/// called with `errc::timeout` ("the waiter was destroyed before fence N completed").
class vulkan_fence_waiter {
public:
    using fence = vulkan_backend::fence;

    /// @brief Starts the waiter thread for `backend`; `slice` bounds each single driver wait.
    /// @throws std::system_error invalid_argument when `slice` is not positive; whatever starting a thread throws
    explicit vulkan_fence_waiter(vulkan_backend& backend, std::chrono::nanoseconds slice = std::chrono::milliseconds(2))
        : backend_(&backend), slice_(check_slice(slice)), thread_([this] { run(); }) {}
    vulkan_fence_waiter(const vulkan_fence_waiter&) = delete;
    vulkan_fence_waiter& operator=(const vulkan_fence_waiter&) = delete;
    /// @brief Stops the thread; fails the callbacks still pending (see the class comment).
    ~vulkan_fence_waiter() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
        for (auto& [value, fn] : pending_) {
            fn(std::make_exception_ptr(std::system_error(
                make_error_code(errc::timeout),
                "unibuf: vulkan_fence_waiter was destroyed before fence " + std::to_string(value) + " completed")));
        }
    }

    /// @brief The backend whose fences it waits for.
    [[nodiscard]] vulkan_backend& backend() const noexcept { return *backend_; }
    /// @brief True when `f` completed (never blocks).
    [[nodiscard]] bool is_complete(const fence& f) const { return backend_->is_complete(f); }
    /// @brief Fences being waited for.
    [[nodiscard]] std::size_t pending() const {
        std::lock_guard lk(m_);
        return pending_.size();
    }

    /// @brief Calls `fn(nullptr)` once `f` completed (on the waiter thread, or at once on this
    /// thread when it has), `fn(error)` on device loss. `fn` must be short and must not throw.
    /// @throws std::system_error invalid_argument for a fence this backend never issued (names both values)
    void notify_when_complete(const fence& f, std::function<void(std::exception_ptr)> fn) {
        if (backend_->is_complete(f)) {
            fn(nullptr);
            return;
        }
        const fence newest = backend_->submitted_fence();
        if (f.value > newest.value)
            throw_error(errc::invalid_argument, "unibuf: vulkan_fence_waiter: fence " + std::to_string(f.value) +
                                                    " was never issued by this backend (newest: " +
                                                    std::to_string(newest.value) + ")");
        // Notified under the lock: once registered, the wait may end and its owner destroy this waiter.
        std::lock_guard lk(m_);
        pending_.emplace(f.value, std::move(fn));
        cv_.notify_all();
    }

private:
    static std::chrono::nanoseconds check_slice(std::chrono::nanoseconds s) {
        if (s <= std::chrono::nanoseconds::zero())
            throw_error(errc::invalid_argument, "unibuf: vulkan_fence_waiter: a wait slice of " +
                                                    std::to_string(s.count()) + " ns was given; it must be positive");
        return s;
    }

    void run() {
        std::unique_lock lk(m_);
        for (;;) {
            cv_.wait(lk, [&] { return stop_ || !pending_.empty(); });
            if (stop_) return;
            const fence smallest{pending_.begin()->first};
            lk.unlock();
            std::exception_ptr error;
            try {
                (void)backend_->wait(smallest, slice_);
            } catch (...) {
                error = std::current_exception();  // device lost: every pending wait fails with it
            }
            std::vector<std::function<void(std::exception_ptr)>> ready;
            lk.lock();
            while (!pending_.empty() && (error || backend_->is_complete(fence{pending_.begin()->first}))) {
                ready.push_back(std::move(pending_.begin()->second));
                pending_.erase(pending_.begin());
            }
            lk.unlock();
            for (auto& fn : ready) fn(error);
            lk.lock();
        }
    }

    vulkan_backend* backend_;
    std::chrono::nanoseconds slice_;
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::multimap<std::uint64_t, std::function<void(std::exception_ptr)>> pending_;  // by fence value
    bool stop_ = false;
    std::thread thread_;  // last: starts once the members above exist
};

} // namespace unibuf
