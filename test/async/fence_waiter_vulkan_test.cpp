// vulkan_fence_waiter and the wait it is built on (vulkan_backend::wait_or_wake): a newly awaited
// smaller value ends the driver wait at once through the waiter's wake semaphore (timeline path),
// within a slice on the VkFence fallback. Fences are held pending by a batch on the backend's
// queue that waits for the test's semaphore (held_queue) until the test opens the gate, so every
// ordering below comes from gates, never from sleeps or timings. Runs on lavapipe under
// validation + synchronization validation (any message fails a test).
#include <unibuf/async/vulkan/fence_waiter.hpp>

#include "../common/expect_error.hpp"
#include "../common/gate.hpp"
#include "../vulkan/vk_env.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace unibuf;
using fence = vulkan_backend::fence;
using unibuf_test::gate;

/// Copy-only submissions on the transfer lane (emulated on lavapipe's one queue family): the
/// waits then span both lane semaphores.
struct transfer_lane_options {
    static constexpr const char* name = "vulkan-transfer-lane";
    static vulkan_backend::options options() {
        vulkan_backend::options o;
        o.copies = copy_queue::transfer;
        o.emulate_transfer_queue = true;
        return o;
    }
};
using transfer_env = unibuf_test::basic_vulkan_env<transfer_lane_options>;

memory_request host_request(std::uint64_t bytes) {
    memory_request r;
    r.size_bytes = bytes;
    r.placement = placement_kind::host;
    r.sync = sync_kind::none;
    return r;
}

/// Holds the backend's queues until the test opens a gate: `hold()` submits, straight to the
/// backend's queue and to its transfer queue where it has one (under its submission lock), a batch without commands that waits for the
/// test's own timeline semaphore to reach the gate's number; the queue starts batches in
/// submission order (lavapipe's queue thread, as GPU queues do), so every backend submission made
/// after `hold()` stays pending until `open(gate)`. Gates open in order (a timeline only grows).
/// Opens every gate and waits for the device when it ends, so a failing test never leaves the
/// queue held.
class held_queue {
public:
    explicit held_queue(vulkan_backend& b) : b_(&b) {
        vk::SemaphoreTypeCreateInfo ti;
        ti.semaphoreType = vk::SemaphoreType::eTimeline;
        vk::SemaphoreCreateInfo sci;
        sci.pNext = &ti;
        const auto& ctx = b.context();
        EXPECT_EQ(ctx.device().createSemaphore(&sci, nullptr, &sem_, ctx.dispatcher()), vk::Result::eSuccess);
    }
    held_queue(const held_queue&) = delete;
    held_queue& operator=(const held_queue&) = delete;
    ~held_queue() {
        if (gates_ > 0) open(gates_);
        EXPECT_TRUE(b_->wait_idle());
        // The hold batches are the test's own: no backend fence covers them, and the layer may not
        // have retired them when the backend knows its own submissions complete (it can know that
        // without asking the driver). vkQueueWaitIdle makes the layer see them done before the
        // semaphore they wait for goes (else VUID-vkDestroySemaphore-semaphore-01137, seen under ThreadSanitizer).
        const auto& ctx = b_->context();
        {
            auto lock = b_->begin();
            ctx.queue().waitIdle(ctx.dispatcher());
            if (ctx.transfer_queue() && ctx.transfer_queue() != ctx.queue()) ctx.transfer_queue().waitIdle(ctx.dispatcher());
        }
        ctx.device().destroySemaphore(sem_, nullptr, ctx.dispatcher());
    }

    /// Holds the submissions made from now on until `open(gate)`; returns the gate (1, 2, 3...).
    std::uint64_t hold() {
        const std::uint64_t gate = ++gates_;
        auto lock = b_->begin();  // the submission lock: the queue is the backend's
        const vk::PipelineStageFlags stage = vk::PipelineStageFlagBits::eAllCommands;
        vk::TimelineSemaphoreSubmitInfo ti;
        ti.waitSemaphoreValueCount = 1;
        ti.pWaitSemaphoreValues = &gate;
        vk::SubmitInfo si;
        si.pNext = &ti;
        si.waitSemaphoreCount = 1;
        si.pWaitSemaphores = &sem_;
        si.pWaitDstStageMask = &stage;
        const auto& ctx = b_->context();
        EXPECT_EQ(ctx.queue().submit(1, &si, vk::Fence{}, ctx.dispatcher()), vk::Result::eSuccess);
        // A device with a dedicated transfer queue (the H200; lavapipe has one queue) runs the
        // transfer lane's copies there: that queue is held the same way, by the same gate.
        if (ctx.transfer_queue() && ctx.transfer_queue() != ctx.queue()) {
            EXPECT_EQ(ctx.transfer_queue().submit(1, &si, vk::Fence{}, ctx.dispatcher()), vk::Result::eSuccess);
        }
        return gate;
    }
    /// Releases what `hold()` number `gate` and every earlier one held.
    void open(std::uint64_t gate) {
        if (gate <= opened_) return;
        vk::SemaphoreSignalInfo si;
        si.semaphore = sem_;
        si.value = gate;
        const auto& ctx = b_->context();
        EXPECT_EQ(ctx.device().signalSemaphore(&si, ctx.dispatcher()), vk::Result::eSuccess);
        opened_ = gate;
    }

private:
    vulkan_backend* b_;
    vk::Semaphore sem_;
    std::uint64_t gates_ = 0, opened_ = 0;
};

/// A small device copy: a fence of the backend (on the transfer lane where copies go there).
class copies {
public:
    explicit copies(vulkan_backend& b)
        : b_(&b), src_(b.allocate(host_request(4096))), dst_(b.allocate(host_request(4096))) {}
    fence next() { return b_->copy(src_, 0, dst_, 0, 4096); }

private:
    vulkan_backend* b_;
    vulkan_backend::allocation src_, dst_;
};

/// One callback of the waiter: what it was called with, and whether the fence was complete then.
struct called {
    explicit called(vulkan_backend& b, fence f) : b_(&b), f_(f) {}
    std::function<void(std::exception_ptr)> fn() {
        return [this](std::exception_ptr e) {
            error = e;
            complete_then = !e && b_->is_complete(f_);
            count.fetch_add(1, std::memory_order_acq_rel);
            done.open();
        };
    }
    gate done;
    std::atomic<int> count{0};
    std::exception_ptr error;  // written before done.open(), read after done.wait()
    bool complete_then = false;

private:
    vulkan_backend* b_;
    fence f_;
};

/// The waiter's `on_wait` hook: every value it waited for; gates opened at the first wait for
/// `watch` and for `then`; and a parking spot.
///
/// Gates open only while the waiter is parked here, outside any Vulkan call. The validation layer
/// of Debian 12 (1.3.239) deadlocks a host vkSignalSemaphore of one thread against another
/// thread's query of a queue that waits for that signal (vkGetSemaphoreCounterValue,
/// vkWaitSemaphores, vkWaitForFences): the query, seeing the driver's new value before the
/// layer recorded the signal, waits holding the lock the signal's record needs; after 10 s the
/// layer reports UNASSIGNED-VkSemaphore-state-timeout. CI's ThreadSanitizer run hit it on the
/// timeline path (the waiter's poll after its wait ended), as the VkFence fallback did before.
/// The waiter reaches its hook after every driver wait (a wake, a completion or, on the
/// fallback, a 2 ms slice), so `park_at` a value it is bound to wait for next stops it there.
struct wait_log {
    explicit wait_log(std::uint64_t w, std::uint64_t t = 0) : watch(w), then(t) {}
    void operator()(std::uint64_t v) {
        std::unique_lock lk(m);
        values.push_back(v);
        if (v == watch) reached.open();
        if (v == then) reached_then.open();
        if (park_value != 0 && park_value == v) {
            const std::uint64_t go_now = go;
            parked_at = v;
            cv.notify_all();
            cv.wait(lk, [&] { return go != go_now; });
        }
    }
    std::vector<std::uint64_t> seen() {
        std::lock_guard lk(m);
        return values;
    }
    /// From now on the waiter stops at its first hook call for fence `v`.
    void park_at(std::uint64_t v) {
        std::lock_guard lk(m);
        park_value = v;
    }
    /// True once the waiter is parked; false after 10 s.
    bool wait_parked() {
        std::unique_lock lk(m);
        return cv.wait_for(lk, std::chrono::seconds(10), [&] { return parked_at != 0; });
    }
    /// Lets a parked waiter go on; it stops next at fence `next` (0: nowhere).
    void release(std::uint64_t next = 0) {
        {
            std::lock_guard lk(m);
            park_value = next;
            parked_at = 0;
            ++go;
        }
        cv.notify_all();
    }

    const std::uint64_t watch, then;
    gate reached, reached_then;
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::uint64_t> values;
    std::uint64_t park_value = 0, parked_at = 0, go = 0;
};

/// Declared after the waiter: a failing assertion never leaves the waiter parked for its
/// destructor to join.
struct unpark_at_exit {
    wait_log& log;
    ~unpark_at_exit() { log.release(); }
};

/// A waiter whose driver waits only a wake (or the fence) can end (timeline path); 2 ms slices on
/// the VkFence fallback.
vulkan_fence_waiter::options long_waits(wait_log& log) {
    vulkan_fence_waiter::options o;
    o.bound = std::chrono::hours(1);
    o.on_wait = [&log](std::uint64_t v) { log(v); };
    return o;
}

template <class Env>
class FenceWaiter : public ::testing::Test {
protected:
    void TearDown() override { Env::expect_clean(); }
};

using waiter_envs = ::testing::Types<unibuf_test::vulkan_env, transfer_env, unibuf_test::vulkan_staged_env>;
struct env_names {
    template <class Env>
    static std::string GetName(int) {
        return Env::name;
    }
};
TYPED_TEST_SUITE(FenceWaiter, waiter_envs, env_names);

// The waiter blocks on a held far fence; a smaller value awaited then (a copy, on the transfer lane
// where there is one) becomes the waiter's next wait while the far fence and the smaller one are
// still held, and is served as soon as it completes, the far fence still held. On the timeline
// path each driver wait is bounded by an hour here, so only the wake semaphore can have ended the
// wait on the far fence: the registration signalled it (wakes() == 1). On the VkFence fallback the
// smaller value is picked up when the 2 ms slice ends (wakes() == 0).
TYPED_TEST(FenceWaiter, ASmallerValueAwaitedLaterBecomesTheWaitWhileAFarOneIsHeld) {
    auto& b = TypeParam::get();
    held_queue h(b);
    copies c(b);
    const std::uint64_t gate1 = h.hold();
    const fence first = c.next();
    const fence mid = c.next();
    const std::uint64_t gate2 = h.hold();
    const fence far = c.next();
    ASSERT_LT(first.value, mid.value);
    ASSERT_LT(mid.value, far.value);

    wait_log log(far.value, mid.value);
    called far_cb(b, far), mid_cb(b, mid);  // before the waiter: its thread is joined before they go
    vulkan_fence_waiter waiter(b, long_waits(log));
    const unpark_at_exit unpark{log};
    EXPECT_EQ(waiter.wakes_early(), b.uses_timeline());
    waiter.notify_when_complete(far, far_cb.fn());
    ASSERT_TRUE(log.reached.wait()) << "the waiter never waited for fence " << far.value;

    log.park_at(mid.value);  // gate 1 opens while the waiter is parked there (see wait_log)
    waiter.notify_when_complete(mid, mid_cb.fn());  // smaller than the value being waited for
    EXPECT_EQ(waiter.wakes(), b.uses_timeline() ? 1u : 0u);
    ASSERT_TRUE(log.reached_then.wait()) << "the waiter never went on to fence " << mid.value;
    ASSERT_TRUE(log.wait_parked()) << "the waiter did not stop at its wait for fence " << mid.value;
    EXPECT_FALSE(b.is_complete(mid)) << "gate 1 is closed";
    EXPECT_EQ(waiter.pending(), 2u);
    EXPECT_EQ(mid_cb.count.load(), 0);

    h.open(gate1);
    log.release(far.value);  // it serves fence mid, then stops at its wait for far
    ASSERT_TRUE(mid_cb.done.wait()) << "fence " << mid.value << " completed but its waiter was not called";
    EXPECT_FALSE(mid_cb.error);
    EXPECT_TRUE(mid_cb.complete_then);
    EXPECT_EQ(far_cb.count.load(), 0);
    ASSERT_TRUE(log.wait_parked()) << "the waiter did not go back to fence " << far.value;
    EXPECT_FALSE(b.is_complete(far)) << "gate 2 is closed";

    h.open(gate2);
    log.release();
    ASSERT_TRUE(far_cb.done.wait());
    EXPECT_FALSE(far_cb.error);
    EXPECT_TRUE(far_cb.complete_then);
    EXPECT_EQ(mid_cb.count.load(), 1);
    EXPECT_EQ(far_cb.count.load(), 1);
    EXPECT_EQ(waiter.pending(), 0u);
    const auto seen = log.seen();
    ASSERT_GE(seen.size(), 2u);
    EXPECT_EQ(seen.front(), far.value);
    if (b.uses_timeline()) {
        EXPECT_EQ(seen[1], mid.value) << "after the wake, the wait went to the smaller value at once";
    }
}

// Threads register every fence of a held sequence at once, each in its own order (descending orders
// keep ending the waiter's wait through the wake semaphore); every callback is called exactly once,
// without error, only once its fence completed.
TYPED_TEST(FenceWaiter, ManyThreadsRegisterWhileTheWaiterWaits) {
    auto& b = TypeParam::get();
    held_queue h(b);
    copies c(b);
    const std::uint64_t held = h.hold();
    std::vector<fence> fs;
    for (int i = 0; i < 16; ++i) fs.push_back(c.next());
    constexpr std::size_t threads = 6;
    const std::size_t n = fs.size();
    wait_log log(0);
    std::vector<std::atomic<int>> calls(threads * n);
    std::atomic<int> late{0};  // callbacks called before their fence completed, or with an error
    std::atomic<std::size_t> total{0};
    gate all_called;
    vulkan_fence_waiter waiter(b, long_waits(log));  // after what its callbacks touch: joined before they go
    const unpark_at_exit unpark{log};
    log.park_at(fs.front().value);  // the smallest: whatever the order, the waiter gets to it and stops
    std::latch start(static_cast<std::ptrdiff_t>(threads));
    std::vector<std::thread> ts;
    for (std::size_t t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            std::vector<std::size_t> order(n);
            for (std::size_t i = 0; i < n; ++i) order[i] = t % 2 == 0 ? n - 1 - i : (i * 7 + t) % n;
            start.arrive_and_wait();
            for (std::size_t i : order) {
                const fence f = fs[i];
                waiter.notify_when_complete(f, [&, t, i, f](std::exception_ptr e) {
                    if (e || !b.is_complete(f)) late.fetch_add(1);
                    calls[t * n + i].fetch_add(1);
                    if (total.fetch_add(1) + 1 == threads * n) all_called.open();
                });
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(waiter.pending(), threads * n) << "nothing can complete while the gate is closed";
    EXPECT_LE(waiter.wakes(), threads * n);

    ASSERT_TRUE(log.wait_parked()) << "the waiter did not stop at its wait for fence " << fs.front().value;
    h.open(held);  // while the waiter is parked (see wait_log)
    log.release();
    ASSERT_TRUE(all_called.wait()) << total.load() << " of " << threads * n << " callbacks called";
    EXPECT_EQ(late.load(), 0);
    for (std::size_t k = 0; k < calls.size(); ++k) EXPECT_EQ(calls[k].load(), 1) << "thread " << k / n << ", fence " << k % n;
    EXPECT_EQ(waiter.pending(), 0u);
    if (!b.uses_timeline()) {
        EXPECT_EQ(waiter.wakes(), 0u);
    }
}

// Destroyed while its thread is blocked on a held fence: the destructor ends the driver wait (the
// wake semaphore; on the VkFence fallback the slice) instead of waiting out the hour-long bound, and
// every pending callback gets errc::timeout naming its fence.
TYPED_TEST(FenceWaiter, DestructionWithPendingWaitsEndsTheWaitAndFailsThem) {
    auto& b = TypeParam::get();
    held_queue h(b);
    copies c(b);
    (void)h.hold();
    const fence f1 = c.next();
    const fence f2 = c.next();
    wait_log log(f1.value);
    called c1(b, f1), c2(b, f2);
    auto waiter = std::make_unique<vulkan_fence_waiter>(b, long_waits(log));
    waiter->notify_when_complete(f2, c2.fn());
    waiter->notify_when_complete(f1, c1.fn());
    ASSERT_TRUE(log.reached.wait()) << "the waiter never waited for fence " << f1.value;

    gate destroyed;
    std::thread t([&] {
        waiter.reset();
        destroyed.open();
    });
    const bool ended = destroyed.wait();
    if (!ended) h.open(1);  // let the stuck waiter see its fences complete, so that the test ends
    t.join();
    ASSERT_TRUE(ended) << "the destructor did not end the waiter's driver wait";
    EXPECT_FALSE(b.is_complete(f1)) << "the gates are still closed";
    for (auto* cb : {&c1, &c2}) {
        EXPECT_EQ(cb->count.load(), 1);
        EXPECT_FALSE(cb->complete_then);
    }
    ASSERT_TRUE(c1.error && c2.error);
    unibuf_test::expect_error([&] { std::rethrow_exception(c1.error); }, errc::timeout,
                              {"destroyed before fence", std::to_string(f1.value).c_str()});
    unibuf_test::expect_error([&] { std::rethrow_exception(c2.error); }, errc::timeout,
                              {"destroyed before fence", std::to_string(f2.value).c_str()});
}

class WaitOrWake : public ::testing::Test {
protected:
    void TearDown() override {
        unibuf_test::vulkan_env::expect_clean();
        unibuf_test::vulkan_staged_env::expect_clean();
    }
};

// The wait itself: it ends at its bound, on a wake given from another thread (while the fence is
// held, so nothing else could end it), at once when the wake value was reached before, and when
// the fence completes.
TEST_F(WaitOrWake, EndsOnTheWakeTheFenceOrItsBound) {
    auto& b = unibuf_test::vulkan_env::get();
    held_queue h(b);
    copies c(b);
    const std::uint64_t held = h.hold();
    const fence f = c.next();
    vulkan_wake_semaphore wake = b.make_wake_semaphore();
    ASSERT_TRUE(wake);
    EXPECT_EQ(wake.device(), b.context().device());
    EXPECT_EQ(wake.value(), 0u);
    EXPECT_EQ(b.wait_or_wake(f, wake, 1, std::chrono::milliseconds(1)), vulkan_wait_result::timeout);

    gate returned;
    vulkan_wait_result r = vulkan_wait_result::timeout;
    std::thread t([&] {
        r = b.wait_or_wake(f, wake, 1, std::chrono::hours(1));
        returned.open();
    });
    ASSERT_TRUE(wake.signal());
    const bool ended = returned.wait();
    if (!ended) h.open(held);
    t.join();
    ASSERT_TRUE(ended) << "the wake did not end the wait";
    EXPECT_EQ(r, vulkan_wait_result::woken);
    EXPECT_EQ(wake.value(), 1u);
    EXPECT_EQ(b.wait_or_wake(f, wake, 1, std::chrono::hours(1)), vulkan_wait_result::woken);  // reached before
    EXPECT_FALSE(b.is_complete(f));

    h.open(held);
    EXPECT_EQ(b.wait_or_wake(f, wake, 2, std::chrono::hours(1)), vulkan_wait_result::complete);
    EXPECT_EQ(to_string(vulkan_wait_result::woken), "woken");

    // A moved-from wake semaphore is empty and safe; the wait then waits for the fence alone.
    vulkan_wake_semaphore moved = std::move(wake);
    EXPECT_FALSE(wake);
    EXPECT_EQ(wake.value(), 0u);
    EXPECT_FALSE(wake.signal());
    EXPECT_EQ(moved.value(), 1u);
    EXPECT_EQ(b.wait_or_wake(f, wake, 1, std::chrono::milliseconds(1)), vulkan_wait_result::complete);
}

TEST_F(WaitOrWake, RejectsFencesNeverIssuedAndWakesOfAnotherDevice) {
    auto& b = unibuf_test::vulkan_env::get();
    const vulkan_wake_semaphore wake = b.make_wake_semaphore();
    const fence never{b.submitted_fence().value + 5};
    unibuf_test::expect_error([&] { (void)b.wait_or_wake(never, wake, 1, std::chrono::milliseconds(1)); },
                              errc::invalid_argument, {"never issued", std::to_string(never.value).c_str()});
    const vulkan_wake_semaphore foreign = unibuf_test::vulkan_staged_env::get().make_wake_semaphore();
    EXPECT_FALSE(foreign) << "the VkFence fallback has no timeline semaphore to wake with";
    auto& t = transfer_env::get();
    const vulkan_wake_semaphore other = t.make_wake_semaphore();
    unibuf_test::expect_error([&] { (void)b.wait_or_wake(fence{}, other, 1, std::chrono::milliseconds(1)); },
                              errc::invalid_argument, {"another device"});
    unibuf_test::expect_no_messages(t);
    vulkan_fence_waiter::options zero;
    zero.bound = std::chrono::nanoseconds(0);
    unibuf_test::expect_error([&] { vulkan_fence_waiter w(b, zero); }, errc::invalid_argument, {"bound", "0 ns"});
}

// The VkFence fallback: no wake semaphore; the wait is the fence's, bounded.
TEST_F(WaitOrWake, TheVkFenceFallbackWaitsForTheFenceAlone) {
    auto& b = unibuf_test::vulkan_staged_env::get();
    ASSERT_FALSE(b.uses_timeline());
    held_queue h(b);
    copies c(b);
    const std::uint64_t held = h.hold();
    const fence f = c.next();
    const vulkan_wake_semaphore none = b.make_wake_semaphore();
    EXPECT_FALSE(none);
    EXPECT_EQ(b.wait_or_wake(f, none, 1, std::chrono::milliseconds(1)), vulkan_wait_result::timeout);
    h.open(held);
    EXPECT_EQ(b.wait_or_wake(f, none, 1, std::chrono::hours(1)), vulkan_wait_result::complete);
}

} // namespace
