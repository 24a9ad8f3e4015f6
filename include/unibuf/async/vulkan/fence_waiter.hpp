/// @file fence_waiter.hpp
/// @brief `vulkan_fence_waiter`: the completion signal of `when_complete` on Vulkan. One thread
/// per device blocks in the driver on the smallest pending fence value; when it completes, the
/// waiters of it and of every smaller value are called (they post their coroutines to their
/// schedulers). No thread spins, the waiter's included.
///
/// How it waits. Timeline semaphores (the usual case): the waiter owns a wake semaphore
/// (`vulkan_backend::make_wake_semaphore`, a timeline semaphore only the host signals) and waits
/// with `vulkan_backend::wait_or_wake`, one vkWaitSemaphores with VK_SEMAPHORE_WAIT_ANY_BIT over
/// the queues' semaphores (at the fence value) and the wake semaphore (at its next value). A
/// value awaited later that is smaller than the one being waited for signals the wake semaphore
/// from the registering thread, which ends the driver wait at once; the waiter then waits for the
/// new smallest value. Each driver wait is still bounded (`options::bound`, default
/// `default_wait_timeout`); the waiter waits again while anything is pending. The bound a caller
/// gets is `when_complete`'s own (`wait_options::timeout`).
///
/// VkFence fallback (`vulkan_backend::uses_timeline()` false): a VkFence cannot be signalled by
/// the host and a wait cannot include a semaphore, so nothing can end a driver wait early. Each
/// wait is then bounded by `options::slice` (default 2 ms), and a smaller value awaited later is
/// picked up when the slice ends.
///
/// Device loss is reported to every pending waiter as the backend's `errc::device_lost` error.
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
#include "../../core/timeout.hpp"

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
/// Thread-safe. Destroy it after the waits it serves ended, and before the backend: callbacks
/// still pending then are called with `errc::timeout` ("the waiter was destroyed before fence N
/// completed"); the destructor ends the waiter's driver wait at once (wake semaphore) on the
/// timeline path, within one slice on the VkFence fallback.
class vulkan_fence_waiter {
public:
    using fence = vulkan_backend::fence;

    /// @brief How the waiter thread waits.
    struct options {
        /// @brief VkFence fallback only: the bound of each driver wait, so the longest a smaller
        /// value awaited later waits to be noticed (see the file comment). Must be positive.
        std::chrono::nanoseconds slice = std::chrono::milliseconds(2);
        /// @brief Timeline path: the bound of each driver wait (the wake semaphore ends one early
        /// when a smaller value is awaited). Must be positive.
        std::chrono::nanoseconds bound = default_wait_timeout;
        /// @brief Called on the waiter thread with the fence value just before each driver wait
        /// (tracing; tests order themselves on it). No lock is held; it must be short and must not throw.
        std::function<void(std::uint64_t)> on_wait;
    };

    /// @brief Starts the waiter thread for `backend`; `slice` bounds each single driver wait on
    /// the VkFence fallback (`options::slice`), the other options are the defaults.
    /// @throws std::system_error invalid_argument when `slice` is not positive; from creating the
    /// wake semaphore; whatever starting a thread throws
    explicit vulkan_fence_waiter(vulkan_backend& backend, std::chrono::nanoseconds slice = std::chrono::milliseconds(2))
        : vulkan_fence_waiter(backend, options{slice, default_wait_timeout, {}}) {}

    /// @brief Starts the waiter thread for `backend` with `opt`.
    /// @throws std::system_error invalid_argument when `opt.slice` or `opt.bound` is not positive;
    /// from creating the wake semaphore; whatever starting a thread throws
    vulkan_fence_waiter(vulkan_backend& backend, options opt)
        : backend_(&backend), opt_(check(std::move(opt))), wake_(backend.make_wake_semaphore()),
          thread_([this] { run(); }) {}
    vulkan_fence_waiter(const vulkan_fence_waiter&) = delete;
    vulkan_fence_waiter& operator=(const vulkan_fence_waiter&) = delete;

    /// @brief Stops the thread; fails the callbacks still pending (see the class comment).
    ~vulkan_fence_waiter() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
            if (waiting_for_ != 0) wake_locked();
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
    /// @throws std::system_error device_lost
    [[nodiscard]] bool is_complete(const fence& f) const { return backend_->is_complete(f); }
    /// @brief Fences being waited for.
    [[nodiscard]] std::size_t pending() const {
        std::lock_guard lk(m_);
        return pending_.size();
    }
    /// @brief True when a newly awaited smaller value ends the driver wait at once (timeline
    /// path: the wake semaphore exists); false on the VkFence fallback (bounded slices).
    [[nodiscard]] bool wakes_early() const noexcept { return static_cast<bool>(wake_); }
    /// @brief How many driver waits were ended early through the wake semaphore (by a smaller
    /// value awaited, or by the destructor); always 0 on the VkFence fallback.
    [[nodiscard]] std::uint64_t wakes() const {
        std::lock_guard lk(m_);
        return wakes_;
    }

    /// @brief Calls `fn(nullptr)` once `f` completed (on the waiter thread, or at once on this
    /// thread when it has), `fn(error)` on device loss. `fn` must be short and must not throw.
    /// When `f` is smaller than the value the waiter is blocked on, this ends that wait at once
    /// (timeline path; see the file comment).
    /// @throws std::system_error invalid_argument for a fence this backend never issued (names both
    /// values), device_lost
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
        if (waiting_for_ != 0 && f.value < waiting_for_) wake_locked();
        cv_.notify_all();
    }

private:
    static options check(options o) {
        if (o.slice <= std::chrono::nanoseconds::zero())
            throw_error(errc::invalid_argument, "unibuf: vulkan_fence_waiter: a wait slice of " +
                                                    std::to_string(o.slice.count()) + " ns was given; it must be positive");
        if (o.bound <= std::chrono::nanoseconds::zero())
            throw_error(errc::invalid_argument, "unibuf: vulkan_fence_waiter: a wait bound of " +
                                                    std::to_string(o.bound.count()) + " ns was given; it must be positive");
        return o;
    }

    // Ends the current driver wait (once per wait): the wake semaphore reaches the value the wait
    // includes. Without a wake semaphore, or if the driver refuses the signal, the wait ends at its bound.
    void wake_locked() noexcept {
        if (woken_ || !wake_) return;
        if (wake_.signal()) {
            woken_ = true;
            ++wakes_;
        }
    }

    void run() {
        const std::chrono::nanoseconds bound = wake_ ? opt_.bound : opt_.slice;
        std::unique_lock lk(m_);
        for (;;) {
            cv_.wait(lk, [&] { return stop_ || !pending_.empty(); });
            if (stop_) return;
            const fence smallest{pending_.begin()->first};
            // The wait includes the wake semaphore's next value: a signal from now on (under this
            // lock) ends it, even one given before the driver wait begins.
            waiting_for_ = smallest.value;
            woken_ = false;
            const std::uint64_t wake_value = wake_.value() + 1;
            lk.unlock();
            if (opt_.on_wait) opt_.on_wait(smallest.value);
            std::exception_ptr error;
            try {
                (void)backend_->wait_or_wake(smallest, wake_, wake_value, bound);
            } catch (...) {
                error = std::current_exception();  // device lost: every pending wait fails with it
            }
            std::vector<std::function<void(std::exception_ptr)>> ready;
            lk.lock();
            waiting_for_ = 0;
            while (!pending_.empty()) {
                if (!error) {
                    try {
                        if (!backend_->is_complete(fence{pending_.begin()->first})) break;
                    } catch (...) {
                        error = std::current_exception();
                    }
                }
                ready.push_back(std::move(pending_.begin()->second));
                pending_.erase(pending_.begin());
            }
            lk.unlock();
            // Each callback gets its own exception object (detail::own_copy), handed over by move:
            // the waiter thread keeps no reference to what another thread reads.
            for (auto& fn : ready) fn(detail::own_copy(error));
            error = nullptr;
            ready.clear();
            lk.lock();
        }
    }

    // Declared in construction order; the thread last: it starts once the members above exist,
    // and is joined (destructor body) before the wake semaphore is destroyed.
    vulkan_backend* backend_;
    options opt_;
    vulkan_wake_semaphore wake_;  // empty on the VkFence fallback
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::multimap<std::uint64_t, std::function<void(std::exception_ptr)>> pending_;  // by fence value
    std::uint64_t waiting_for_ = 0;  // the value of the driver wait under way (0: none)
    bool woken_ = false;             // the wake semaphore was signalled for the wait under way
    std::uint64_t wakes_ = 0;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace unibuf
