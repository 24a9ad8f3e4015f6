// claim_async / read_async on the host backend: coroutines suspend on the ring instead of a thread.
#include <unibuf/async/ring_awaitable.hpp>
#include <unibuf/async/sync_wait.hpp>
#include <unibuf/async/task.hpp>
#include <unibuf/async/thread_pool.hpp>
#include <unibuf/async/when_all.hpp>
#include <unibuf/unibuf.hpp>

#include "../common/expect_error.hpp"
#include "../common/gate.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stop_token>
#include <thread>
#include <vector>

namespace {

using namespace unibuf;
using slot_buffer = shared_buffer<std::uint64_t, host_backend>;

// One producer and one consumer coroutine pass 2000 items through 2 slots: every item arrives,
// once, in order; both sides suspend on the ring whenever the other is behind.
TEST(RingAsync, ProducerAndConsumerCoroutinesKeepOrder) {
    host_backend dev;
    thread_pool pool(2);
    ring<slot_buffer, 2> r(dev, 16);
    constexpr std::uint64_t items = 2000;
    auto producer = [&]() -> task<void> {
        co_await pool.schedule();
        for (std::uint64_t i = 0; i < items; ++i) {
            auto w = co_await claim_async(r, dev, pool);
            w->fill(i * 3 + 1);
            w.publish();
        }
    };
    auto consumer = [&]() -> task<std::uint64_t> {
        co_await pool.schedule();
        std::uint64_t bad = 0;
        for (std::uint64_t i = 0; i < items; ++i) {
            auto rd = co_await read_async(r, dev, pool);
            const auto v = rd->to_vector();
            if (rd.sequence() != i || v.front() != i * 3 + 1 || v.back() != i * 3 + 1) ++bad;
            rd.release();
        }
        co_return bad;
    };
    auto [p, bad] = sync_wait(when_all(producer(), consumer()));
    (void)p;
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(r.next_read_sequence(), items);
}

// A claim on a full ring suspends (no thread waits) until a consumer releases.
TEST(RingAsync, ClaimSuspendsUntilARelease) {
    host_backend dev;
    thread_pool pool(2);
    ring<slot_buffer, 2> r(dev, 4);
    r.claim().publish();
    r.claim().publish();
    std::atomic<bool> claimed{false};
    unibuf_test::gate done;
    auto third = [&]() -> task<std::uint64_t> {
        auto w = co_await claim_async(r, dev, pool);
        claimed = true;
        const auto s = w.sequence();
        w.publish();
        co_return s;
    };
    std::uint64_t seq = 0;
    std::thread runner([&] {
        seq = sync_wait(third());
        done.open();
    });
    // Bounded wait until the claim registered with the ring (no thread blocks for it).
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (r.waiters() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    ASSERT_EQ(r.waiters(), 1u);
    EXPECT_EQ(r.claim_blocker().reason, ring_wait::consumer);
    EXPECT_FALSE(claimed.load());
    r.read().release();  // frees slot 0: the waiting claim is woken on the pool
    ASSERT_TRUE(done.wait());
    runner.join();
    EXPECT_TRUE(claimed.load());
    EXPECT_EQ(seq, 2u);
}

// A slot released with a device fence: the claim awaits that fence through the backend's signal.
TEST(RingAsync, ClaimAwaitsTheDeviceFenceOfTheRelease) {
    host_backend dev;
    thread_pool pool(2);
    ring<slot_buffer, 1> r(dev, 4);
    r.claim().publish();
    unibuf_test::gate hold;
    auto f = dev.submit([&] { EXPECT_TRUE(hold.wait()); });
    r.read().release(f);  // the device still reads slot 0 until f completes
    EXPECT_EQ(r.claim_blocker().reason, ring_wait::device);
    std::atomic<bool> claimed{false};
    auto next = [&]() -> task<bool> {
        auto w = co_await claim_async(r, dev, pool);
        claimed = true;
        co_return dev.is_complete(f);
    };
    std::thread opener([&] {
        // Open once the claim waits on the fence (bounded: 10 s): it cannot have claimed before.
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (dev.pending_notifications() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        EXPECT_EQ(dev.pending_notifications(), 1u);
        EXPECT_FALSE(claimed.load());
        hold.open();
    });
    EXPECT_TRUE(sync_wait(next()));
    opener.join();
}

TEST(RingAsync, TimeoutNamesTheClaimAndTheReason) {
    host_backend dev;
    thread_pool pool(1);
    ring<slot_buffer, 2> r(dev, 4);
    r.claim().publish();
    r.claim().publish();
    auto claim = [&]() -> task<void> {
        const wait_options opt{std::chrono::milliseconds(20), {}};
        auto w = co_await claim_async(r, dev, pool, opt);
    };
    unibuf_test::expect_error([&] { sync_wait(claim()); }, errc::timeout,
                              {"claim_async of sequence 2 (slot 0 of 2)", "20 ms", "consumers"});
    auto read3 = [&]() -> task<void> {
        (void)r.read();
        (void)r.read();  // both released at once: the ring is empty
        const wait_options opt{std::chrono::milliseconds(20), {}};
        auto rd = co_await read_async(r, dev, pool, opt);
    };
    unibuf_test::expect_error([&] { sync_wait(read3()); }, errc::timeout, {"read_async of sequence 2", "no producer"});
}

TEST(RingAsync, StopRequestCancelsAWaitingRead) {
    host_backend dev;
    thread_pool pool(1);
    ring<slot_buffer, 2> r(dev, 4);
    std::stop_source stop;
    auto reader = [&]() -> task<void> {
        const wait_options opt{std::chrono::seconds(10), stop.get_token()};
        auto rd = co_await read_async(r, dev, pool, opt);
    };
    std::thread canceller([&] {
        // Stop once the read registered with the ring (nothing is published).
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (r.waiters() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        EXPECT_EQ(r.waiters(), 1u);
        stop.request_stop();
    });
    try {
        sync_wait(reader());
        ADD_FAILURE() << "expected the cancellation error";
    } catch (const std::system_error& e) {
        EXPECT_TRUE(is_cancelled(e)) << e.what();
    }
    canceller.join();
    EXPECT_EQ(r.waiters(), 0u);
    // The ring forgot the waiter: a publish now wakes nobody and the item is still readable.
    r.claim().publish();
    EXPECT_TRUE(r.try_read().has_value());
}

// Several producer and consumer coroutines on a 4-thread pool share a 3-slot ring (TSan).
TEST(RingAsync, ManyProducersAndConsumers) {
    host_backend dev;
    thread_pool pool(4);
    ring<slot_buffer, 3> r(dev, 8);
    constexpr int producers = 4;
    constexpr int consumers = 3;
    constexpr std::uint64_t per_producer = 300;
    constexpr std::uint64_t total = producers * per_producer;
    std::atomic<std::uint64_t> next_to_consume{0};
    std::vector<std::atomic<int>> seen(total);
    auto produce = [&]() -> task<void> {
        co_await pool.schedule();
        for (std::uint64_t i = 0; i < per_producer; ++i) {
            auto w = co_await claim_async(r, dev, pool);
            w->fill(w.sequence());
            w.publish();
        }
    };
    auto consume = [&]() -> task<void> {
        co_await pool.schedule();
        for (;;) {
            if (next_to_consume.fetch_add(1) >= total) co_return;
            auto rd = co_await read_async(r, dev, pool);
            const auto v = rd->to_vector();
            if (v.front() == rd.sequence() && v.back() == rd.sequence()) seen[rd.sequence()].fetch_add(1);
            rd.release();
        }
    };
    std::vector<task<void>> all;
    for (int i = 0; i < producers; ++i) all.push_back(produce());
    for (int i = 0; i < consumers; ++i) all.push_back(consume());
    sync_wait(when_all(std::move(all)));
    for (std::uint64_t s = 0; s < total; ++s) ASSERT_EQ(seen[s].load(), 1) << "sequence " << s;
}

} // namespace

// push_async: a stream of 2 segments whose device readers are held back by a gate: the third
// segment's push suspends on the fence of the segment it comes back to, then continues.
#include <unibuf/async/stream_awaitable.hpp>

namespace {

TEST(StreamAsync, PushAwaitsTheSegmentFence) {
    unibuf::host_backend dev;
    unibuf::thread_pool pool(2);
    unibuf::upload_stream<unibuf::host_backend> s(dev, 256, 2);
    unibuf_test::gate hold;
    std::atomic<bool> third_pushed{false};
    auto work = [&]() -> unibuf::task<bool> {
        auto a = co_await unibuf::push_async<float>(s, 64, dev, pool);
        (void)dev.submit([&] { EXPECT_TRUE(hold.wait()); });  // "device work" reading segment 0
        (void)s.close_segment();                             // segment 0 waits for it
        auto b = co_await unibuf::push_async<float>(s, 64, dev, pool);  // segment 1
        (void)s.close_segment();
        auto c = co_await unibuf::push_async<float>(s, 64, dev, pool);  // back to segment 0: waits
        third_pushed = true;
        co_return c.segment() == 0 && b.segment() == 1 && a.segment() == 0;
    };
    std::thread opener([&] {
        // Open once the third push waits on segment 0's fence (bounded: 10 s).
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (dev.pending_notifications() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        EXPECT_EQ(dev.pending_notifications(), 1u);
        EXPECT_FALSE(third_pushed.load());
        hold.open();
    });
    EXPECT_TRUE(unibuf::sync_wait(work()));
    opener.join();
    auto too_big = [&]() -> unibuf::task<void> { (void)co_await unibuf::push_async<float>(s, 1000, dev, pool); };
    unibuf_test::expect_error([&] { unibuf::sync_wait(too_big()); }, unibuf::errc::capacity_exceeded, {"does not fit"});
}

} // namespace
