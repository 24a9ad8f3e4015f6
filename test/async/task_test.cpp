// task<T>, sync_wait, when_all, thread_pool, timer_queue: the coroutine core of the async layer.
#include <unibuf/async/scheduler.hpp>
#include <unibuf/async/sync_wait.hpp>
#include <unibuf/async/task.hpp>
#include <unibuf/async/thread_pool.hpp>
#include <unibuf/async/timer_queue.hpp>
#include <unibuf/async/when_all.hpp>

#include "../common/expect_error.hpp"
#include "../common/gate.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using unibuf::task;

// Counts constructions and destructions: a value moved through tasks is destroyed exactly once.
struct counted {
    static inline std::atomic<int> alive{0};
    int v = 0;
    explicit counted(int x) : v(x) { ++alive; }
    counted(const counted& o) : v(o.v) { ++alive; }
    counted(counted&& o) noexcept : v(o.v) { ++alive; }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) = default;
    ~counted() { --alive; }
};

task<int> value_of(int x) { co_return x; }
task<void> nothing() { co_return; }
task<int> thrower(std::string msg) {
    throw std::runtime_error(msg);
    co_return 0;
}

TEST(Task, IsLazyUntilAwaited) {
    bool ran = false;
    auto make = [&]() -> task<int> {
        ran = true;
        co_return 3;
    };
    {
        task<int> t = make();
        EXPECT_FALSE(ran);
        EXPECT_TRUE(t.valid());
        EXPECT_FALSE(t.done());
    }  // destroyed without running: the frame is freed (ASan checks it)
    EXPECT_FALSE(ran);
    EXPECT_EQ(unibuf::sync_wait(make()), 3);
    EXPECT_TRUE(ran);
}

TEST(Task, ValueAndExceptionReachTheAwaiter) {
    EXPECT_EQ(unibuf::sync_wait(value_of(41)), 41);
    auto outer = []() -> task<std::string> {
        try {
            (void)co_await thrower("boom in the child");
        } catch (const std::runtime_error& e) {
            co_return std::string("caught: ") + e.what();
        }
        co_return "not caught";
    };
    EXPECT_EQ(unibuf::sync_wait(outer()), "caught: boom in the child");
    EXPECT_THROW((void)unibuf::sync_wait(thrower("to sync_wait")), std::runtime_error);
    unibuf::sync_wait(nothing());
}

TEST(Task, MovedFromTaskIsEmptyAndAwaitingItThrows) {
    task<int> a = value_of(5);
    task<int> b = std::move(a);
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the test
    EXPECT_TRUE(b.valid());
    unibuf_test::expect_error([&] { (void)unibuf::sync_wait(std::move(a)); }, unibuf::errc::invalid_argument,
                              {"empty task"});
    a = std::move(b);
    EXPECT_EQ(unibuf::sync_wait(std::move(a)), 5);
}

TEST(Task, ValuesAreDestroyedExactlyOnce) {
    {
        auto make = []() -> task<counted> { co_return counted(9); };
        auto outer = [&]() -> task<int> {
            counted c = co_await make();
            co_return c.v;
        };
        EXPECT_EQ(unibuf::sync_wait(outer()), 9);
    }
    EXPECT_EQ(counted::alive.load(), 0);
}

// 10^5 co_awaits of tasks that finish at once: symmetric transfer keeps the stack flat (run at -O0
// under ASan in the dev preset, and with Clang).
TEST(Task, DeepSynchronousAwaitLoopDoesNotGrowTheStack) {
    auto loop = []() -> task<long> {
        long sum = 0;
        for (int i = 0; i < 100000; ++i) sum += co_await value_of(i);
        co_return sum;
    };
    EXPECT_EQ(unibuf::sync_wait(loop()), 4999950000L);
}

// A recursive chain: each level awaits the next (one nested resume per level going down, as a
// function call would be; the way back up continues each awaiter without nesting further).
task<long> chain(int depth) {
    if (depth == 0) co_return 0;
    const long below = co_await chain(depth - 1);
    co_return below + 1;
}
TEST(Task, RecursiveChain) { EXPECT_EQ(unibuf::sync_wait(chain(2000)), 2000); }

// The pattern GCC 12 has been seen to miscompile: co_await of a capturing lambda's task inside a
// larger expression, in a loop. The values are counted, so a double destruction shows as a
// negative count (and ASan reports a double free).
TEST(Task, CoAwaitOfCapturingLambdaInsideAnExpression) {
    {
        auto loop = []() -> task<long> {
            long sum = 0;
            for (int i = 0; i < 100000; ++i) {
                counted c(i);
                sum += (co_await [&c]() -> task<counted> { co_return counted(c.v); }()).v + 1;
            }
            co_return sum;
        };
        EXPECT_EQ(unibuf::sync_wait(loop()), 4999950000L + 100000L);
    }
    EXPECT_EQ(counted::alive.load(), 0);
}

TEST(ThreadPool, ScheduleMovesToAWorker) {
    unibuf::thread_pool pool(2);
    auto on_pool = [&]() -> task<bool> {
        co_await pool.schedule();
        co_return pool.on_worker();
    };
    EXPECT_TRUE(unibuf::sync_wait(on_pool()));
    EXPECT_FALSE(pool.on_worker());
    unibuf_test::expect_error([] { unibuf::thread_pool p(0); }, unibuf::errc::invalid_argument, {"0 threads"});
}

// 10^5 hops between pool threads: each iteration suspends and resumes on another worker.
TEST(ThreadPool, DeepLoopOfHops) {
    unibuf::thread_pool pool(3);
    auto loop = [&]() -> task<long> {
        long n = 0;
        for (int i = 0; i < 100000; ++i) {
            co_await pool.schedule();
            n += co_await value_of(1);
        }
        co_return n;
    };
    EXPECT_EQ(unibuf::sync_wait(loop()), 100000);
}

TEST(WhenAll, TupleOfValuesRunConcurrently) {
    unibuf::thread_pool pool(4);
    unibuf_test::gate first_started;
    unibuf_test::gate second_started;
    // Each task waits for the other to have started: they can only finish if they run side by side.
    auto a = [&]() -> task<int> {
        co_await pool.schedule();
        first_started.open();
        EXPECT_TRUE(second_started.wait());
        co_return 1;
    };
    auto b = [&]() -> task<std::string> {
        co_await pool.schedule();
        second_started.open();
        EXPECT_TRUE(first_started.wait());
        co_return "two";
    };
    auto [x, y, z] = unibuf::sync_wait(unibuf::when_all(a(), b(), nothing()));
    EXPECT_EQ(x, 1);
    EXPECT_EQ(y, "two");
    (void)z;
}

TEST(WhenAll, VectorKeepsOrderAndWaitsForAllBeforeRethrowing) {
    unibuf::thread_pool pool(4);
    std::atomic<int> finished{0};
    auto work = [&](int i) -> task<int> {
        co_await pool.schedule();
        ++finished;
        if (i == 3) throw std::runtime_error("task 3 failed");
        co_return i * i;
    };
    std::vector<task<int>> ok;
    for (int i = 0; i < 64; ++i) ok.push_back(work(i == 3 ? 100 : i));
    const std::vector<int> r = unibuf::sync_wait(unibuf::when_all(std::move(ok)));
    ASSERT_EQ(r.size(), 64u);
    EXPECT_EQ(r[3], 10000);
    EXPECT_EQ(r[63], 63 * 63);
    finished = 0;
    std::vector<task<int>> bad;
    for (int i = 0; i < 16; ++i) bad.push_back(work(i));
    EXPECT_THROW((void)unibuf::sync_wait(unibuf::when_all(std::move(bad))), std::runtime_error);
    EXPECT_EQ(finished.load(), 16);  // every task finished before the rethrow
    std::vector<task<int>> none;
    EXPECT_TRUE(unibuf::sync_wait(unibuf::when_all(std::move(none))).empty());
}

TEST(WhenAll, SynchronousChildrenDoNotSuspend) {
    std::vector<task<void>> v;
    for (int i = 0; i < 1000; ++i) v.push_back(nothing());
    unibuf::sync_wait(unibuf::when_all(std::move(v)));
    auto [p, q] = unibuf::sync_wait(unibuf::when_all(value_of(1), value_of(2)));
    EXPECT_EQ(p + q, 3);
}

TEST(TimerQueue, RunsInDeadlineOrderAndCancelIsExclusive) {
    unibuf::timer_queue tq;
    std::mutex m;
    std::vector<int> order;
    unibuf_test::gate done;
    const auto now = unibuf::timer_queue::clock::now();
    tq.call_at(now + std::chrono::milliseconds(30), [&] {
        std::lock_guard lk(m);
        order.push_back(3);
        done.open();
    });
    tq.call_at(now + std::chrono::milliseconds(10), [&] {
        std::lock_guard lk(m);
        order.push_back(1);
    });
    const auto id = tq.call_at(now + std::chrono::hours(1), [&] {
        std::lock_guard lk(m);
        order.push_back(99);
    });
    EXPECT_TRUE(tq.cancel(id));
    EXPECT_FALSE(tq.cancel(id));
    ASSERT_TRUE(done.wait());
    std::lock_guard lk(m);
    EXPECT_EQ(order, (std::vector<int>{1, 3}));
}

TEST(TimerQueue, ShutdownRunsPendingCallbacksEarly) {
    std::atomic<int> ran{0};
    {
        unibuf::timer_queue tq;
        tq.call_at(unibuf::timer_queue::clock::now() + std::chrono::hours(1), [&] { ++ran; });
        EXPECT_EQ(tq.pending(), 1u);
    }
    EXPECT_EQ(ran.load(), 1);
}

// Many threads post to the pool at once while its workers run (TSan: label concurrency).
TEST(ThreadPool, ConcurrentPostsAllRun) {
    std::atomic<int> ran{0};
    {
        unibuf::thread_pool pool(3);
        std::vector<std::thread> posters;
        for (int t = 0; t < 4; ++t)
            posters.emplace_back([&] {
                for (int i = 0; i < 2000; ++i) pool.post(std::function<void()>([&] { ++ran; }));
            });
        for (auto& t : posters) t.join();
    }  // the destructor drains the queue
    EXPECT_EQ(ran.load(), 8000);
}

} // namespace
