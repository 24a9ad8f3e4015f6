/// @file timer_queue.hpp
/// @brief `timer_queue`: one thread that runs short callbacks at deadlines; what keeps the
/// awaitables' waits bounded (a ring claim, a fence) without any thread polling.
///
/// `call_at(deadline, fn)` returns an id; `cancel(id)` removes the callback if it has not started
/// (true) — exactly one of "it ran" and "cancel returned true" happens, which is how an awaitable
/// decides between its wake-up and its timeout. Callbacks run on the timer thread and must be short
/// (they post a coroutine to a scheduler). The destructor runs the callbacks still pending at once,
/// so that no awaiter is left waiting for a deadline that will never come.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

namespace unibuf {

/// @brief Runs callbacks at deadlines on its own thread (see the file comment). Thread-safe.
class timer_queue {
public:
    using clock = std::chrono::steady_clock;

    /// @brief Starts the timer thread.
    /// @throws std::system_error when the thread cannot be started
    timer_queue() : thread_([this] { run(); }) {}
    timer_queue(const timer_queue&) = delete;
    timer_queue& operator=(const timer_queue&) = delete;
    /// @brief Runs the pending callbacks now (early), then stops the thread.
    ~timer_queue() { shutdown(); }

    /// @brief Runs `fn` on the timer thread at `deadline` (at once when it has passed); returns the
    /// id for `cancel`. After `shutdown`, `fn` runs at once on the calling thread.
    std::uint64_t call_at(clock::time_point deadline, std::function<void()> fn) {
        std::unique_lock lk(m_);
        if (stopped_) {
            lk.unlock();
            fn();
            return 0;
        }
        const std::uint64_t id = ++next_id_;
        entries_.emplace(key{deadline, id}, std::move(fn));
        deadlines_.emplace(id, deadline);
        cv_.notify_one();  // under the lock, as every notify of the async layer
        return id;
    }

    /// @brief Removes the callback `id`; true when it was still pending (it will never run), false
    /// when it ran, is running, or `id` is unknown.
    bool cancel(std::uint64_t id) {
        std::lock_guard lk(m_);
        const auto d = deadlines_.find(id);
        if (d == deadlines_.end()) return false;
        entries_.erase(key{d->second, id});
        deadlines_.erase(d);
        return true;
    }

    /// @brief Callbacks waiting for their deadline.
    [[nodiscard]] std::size_t pending() const {
        std::lock_guard lk(m_);
        return entries_.size();
    }

    /// @brief Runs the pending callbacks at once and stops the thread (idempotent; the destructor calls it).
    void shutdown() {
        {
            std::lock_guard lk(m_);
            if (stopped_) return;
            stopped_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }

private:
    using key = std::pair<clock::time_point, std::uint64_t>;

    void run() {
        std::unique_lock lk(m_);
        for (;;) {
            if (entries_.empty()) {
                if (stopped_) return;
                cv_.wait(lk);
                continue;
            }
            auto it = entries_.begin();
            if (const clock::time_point due = it->first.first; !stopped_ && due > clock::now()) {
                cv_.wait_until(lk, due);  // a copy: `it` may be erased (cancel) while this waits
                continue;
            }
            deadlines_.erase(it->first.second);
            std::function<void()> fn = std::move(it->second);
            entries_.erase(it);
            lk.unlock();
            fn();
            lk.lock();
        }
    }

    mutable std::mutex m_;
    std::condition_variable cv_;
    std::map<key, std::function<void()>> entries_;
    std::unordered_map<std::uint64_t, clock::time_point> deadlines_;  // id -> its key's deadline
    std::uint64_t next_id_ = 0;
    bool stopped_ = false;
    std::thread thread_;  // last: starts once the members above exist
};

} // namespace unibuf
