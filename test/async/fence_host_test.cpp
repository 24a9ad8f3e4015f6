// when_complete on the host backend: its worker signals the waiters of a fence.
#include <unibuf/async/sync_wait.hpp>
#include <unibuf/async/task.hpp>
#include <unibuf/async/thread_pool.hpp>
#include <unibuf/async/when_all.hpp>
#include <unibuf/async/when_complete.hpp>
#include <unibuf/backend/host/host_backend.hpp>

#include "../common/expect_error.hpp"
#include "../common/gate.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stop_token>
#include <thread>
#include <vector>

namespace {

using unibuf::task;

TEST(WhenCompleteHost, ResumesOnTheSchedulerAfterTheWorkRan) {
    unibuf::host_backend dev;
    unibuf::thread_pool pool(2);
    unibuf_test::gate hold;
    std::atomic<bool> ran{false};
    auto f = dev.submit([&] {
        EXPECT_TRUE(hold.wait());
        ran = true;
    });
    auto waiter = [&]() -> task<bool> {
        co_await unibuf::when_complete(dev, f, pool);
        co_return ran.load() && pool.on_worker();
    };
    std::thread opener([&] {
        // Open once the coroutine waits on f (bounded: 10 s), so that it is resumed by the worker.
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (dev.pending_notifications() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        EXPECT_EQ(dev.pending_notifications(), 1u);
        hold.open();
    });
    EXPECT_TRUE(unibuf::sync_wait(waiter()));
    opener.join();
}

TEST(WhenCompleteHost, CompleteFenceDoesNotSuspend) {
    unibuf::host_backend dev;
    unibuf::thread_pool pool(1);
    auto waiter = [&]() -> task<bool> {
        co_await unibuf::when_complete(dev, unibuf::host_backend::fence{}, pool);
        co_return pool.on_worker();
    };
    EXPECT_FALSE(unibuf::sync_wait(waiter()));  // continued on the calling thread
}

TEST(WhenCompleteHost, TimeoutNamesTheFenceAndTheBound) {
    unibuf::host_backend dev;
    unibuf::thread_pool pool(1);
    unibuf_test::gate hold;
    auto f = dev.submit([&] { EXPECT_TRUE(hold.wait()); });
    auto waiter = [&]() -> task<void> {
        const unibuf::wait_options opt{std::chrono::milliseconds(30), {}};
        co_await unibuf::when_complete(dev, f, pool, opt);
    };
    unibuf_test::expect_error([&] { unibuf::sync_wait(waiter()); }, unibuf::errc::timeout,
                              {"fence 1", "did not complete within 30 ms"});
    hold.open();
    EXPECT_TRUE(dev.wait_idle());
}

TEST(WhenCompleteHost, StopRequestCancelsTheWait) {
    unibuf::host_backend dev;
    unibuf::thread_pool pool(1);
    unibuf_test::gate hold;
    unibuf_test::gate waiting;
    auto f = dev.submit([&] {
        waiting.open();
        EXPECT_TRUE(hold.wait());
    });
    std::stop_source stop;
    std::thread canceller([&] {
        EXPECT_TRUE(waiting.wait());
        stop.request_stop();
    });
    // GCC 12 destroys a temporary argument of a co_await expression twice (a braced wait_options
    // holding a stop_token lost its stop state that way): the options are a named variable.
    auto waiter = [&]() -> task<void> {
        const unibuf::wait_options opt{std::chrono::seconds(10), stop.get_token()};
        co_await unibuf::when_complete(dev, f, pool, opt);
    };
    try {
        unibuf::sync_wait(waiter());
        ADD_FAILURE() << "expected the cancellation error";
    } catch (const std::system_error& e) {
        EXPECT_TRUE(unibuf::is_cancelled(e)) << e.what();
        EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos);
    }
    canceller.join();
    hold.open();
    EXPECT_TRUE(dev.wait_idle());
    // A token already stopped cancels before any wait.
    auto again = [&]() -> task<void> {
        const unibuf::wait_options opt{std::chrono::seconds(1), stop.get_token()};
        auto g = dev.submit([] {});
        co_await unibuf::when_complete(dev, g, pool, opt);
    };
    EXPECT_THROW(unibuf::sync_wait(again()), std::system_error);
}

// Many coroutines await many fences from several threads at once (TSan: label concurrency).
TEST(WhenCompleteHost, ManyConcurrentWaiters) {
    unibuf::host_backend dev;
    unibuf::thread_pool pool(4);
    std::atomic<int> done{0};
    auto one = [&](int i) -> task<int> {
        co_await pool.schedule();
        auto f = dev.submit([] {});
        co_await unibuf::when_complete(dev, f, pool);
        ++done;
        co_return i;
    };
    std::vector<task<int>> all;
    for (int i = 0; i < 2000; ++i) all.push_back(one(i));
    const auto r = unibuf::sync_wait(unibuf::when_all(std::move(all)));
    ASSERT_EQ(r.size(), 2000u);
    for (int i = 0; i < 2000; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], i);
    EXPECT_EQ(done.load(), 2000);
}

// A loop of 10^5 submissions, each awaited: every wait either completes at once or is resumed by the worker.
TEST(WhenCompleteHost, DeepAwaitLoop) {
    unibuf::host_backend dev;
    unibuf::thread_pool pool(2);
    auto loop = [&]() -> task<int> {
        int n = 0;
        for (int i = 0; i < 100000; ++i) {
            auto f = dev.submit([] {});
            co_await unibuf::when_complete(dev, f, pool);
            ++n;
        }
        co_return n;
    };
    EXPECT_EQ(unibuf::sync_wait(loop()), 100000);
}

} // namespace

namespace {

// A notifier that reports a device error for every fence (as a lost device would): the awaiter
// rethrows it, unchanged.
struct failing_notifier {
    using fence = unibuf::host_backend::fence;
    std::vector<std::thread> threads;  // joined by the destructor (declare the notifier after the pool)
    failing_notifier() = default;
    failing_notifier(const failing_notifier&) = delete;
    failing_notifier& operator=(const failing_notifier&) = delete;
    ~failing_notifier() {
        for (auto& t : threads) t.join();
    }
    bool is_complete(const fence& f) const { return f.value == 0; }
    void notify_when_complete(const fence&, std::function<void(std::exception_ptr)> fn) {
        threads.emplace_back([fn = std::move(fn)] {
            fn(std::make_exception_ptr(std::system_error(unibuf::make_error_code(unibuf::errc::device_lost),
                                                         "unibuf: test: the device was lost")));
        });
    }
};
static_assert(unibuf::FenceNotifier<failing_notifier>);

TEST(WhenCompleteHost, DeviceErrorOfTheNotifierIsRethrown) {
    unibuf::thread_pool pool(1);
    failing_notifier n;
    auto waiter = [&]() -> task<void> { co_await unibuf::when_complete(n, unibuf::host_backend::fence{7}, pool); };
    unibuf_test::expect_error([&] { unibuf::sync_wait(waiter()); }, unibuf::errc::device_lost, {"device was lost"});
}

} // namespace
