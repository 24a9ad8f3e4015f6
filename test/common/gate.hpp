// A gate device work waits at until the test opens it: tests hold device work back without
// sleeping, and a broken test fails after a bounded wait instead of hanging.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace unibuf_test {

class gate {
public:
    void open() {
        {
            std::lock_guard lk(m_);
            open_ = true;
        }
        cv_.notify_all();
    }
    /// Waits until opened; false after 10 s.
    bool wait() {
        std::unique_lock lk(m_);
        return cv_.wait_for(lk, std::chrono::seconds(10), [&] { return open_; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool open_ = false;
};

} // namespace unibuf_test
