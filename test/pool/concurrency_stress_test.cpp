// Real threads on a locked pool and on rings: bounded waits, no sleeps; run under ThreadSanitizer
// (-DUNIBUF_SANITIZE=thread with clang-16) as well.
#include "../common/host_env.hpp"
#include "pool_test_util.hpp"

#include <unibuf/transfer/pool.hpp>
#include <unibuf/transfer/ring.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <latch>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::rng64;
using namespace std::chrono_literals;

// Threads acquire, tag, verify and release buffers of one locked pool; a slice shared by two
// threads would show up as a foreign tag.
TEST(ConcurrentPool, ThreadsAcquireAndReleaseWithoutOverlap) {
    host_backend& dev = unibuf_test::host_env::get();
    locked_buffer_pool<host_backend, access::read_write> pool(dev, pool_config::with_bytes(256 << 10));
    using buf = decltype(pool)::buffer<std::uint32_t>;
    constexpr int threads = 4, iterations = 3000;
    std::atomic<int> corrupt{0}, full{0};
    auto work = [&](int t) {
        rng64 r(static_cast<std::uint64_t>(t) + 100);
        std::deque<std::pair<buf, std::uint32_t>> held;
        for (int i = 0; i < iterations; ++i) {
            const std::uint32_t tag = (static_cast<std::uint32_t>(t) << 24) | static_cast<std::uint32_t>(i);
            std::error_code ec;
            auto b = pool.try_acquire<std::uint32_t>(static_cast<std::size_t>(r.in(1, 1024)), ec);
            if (!b) {
                if (ec != errc::capacity_exceeded) corrupt.fetch_add(1);
                full.fetch_add(1);
            } else {
                b->fill(tag);
                held.emplace_back(std::move(*b), tag);
            }
            if (held.size() > 8 || (!b && !held.empty())) {
                const auto v = held.front().first.to_vector();
                if (!std::all_of(v.begin(), v.end(), [&](std::uint32_t x) { return x == held.front().second; }))
                    corrupt.fetch_add(1);
                held.pop_front();
            }
        }
    };
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) ts.emplace_back(work, t);
    for (auto& t : ts) t.join();
    EXPECT_EQ(corrupt.load(), 0);
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.acquires + s.failed_acquires, std::uint64_t{threads} * iterations);
    EXPECT_EQ(s.failed_acquires, static_cast<std::uint64_t>(full.load()));
    EXPECT_EQ(s.acquires, s.releases);
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_EQ(s.free_ranges, 1u);
}

// Three producers, two consumers: every item is read exactly once, each consumer sees increasing
// sequences, and every item holds what its producer wrote.
TEST(ConcurrentRing, ManyProducersManyConsumers) {
    host_backend& dev = unibuf_test::host_env::get();
    locked_buffer_pool<host_backend, access::read_write> pool(dev, pool_config::with_bytes(64 << 10));
    using buf = decltype(pool)::buffer<std::uint64_t>;
    ring<buf, 4> r(dev, [&](std::size_t) { return pool.acquire<std::uint64_t>(64); });
    constexpr int producers = 3, consumers = 2, per_producer = 600;
    constexpr int total = producers * per_producer;
    std::atomic<int> consumed{0}, bad{0};
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::vector<std::vector<std::uint64_t>> seen(consumers);
    auto produce = [&] {
        for (int i = 0; i < per_producer; ++i) {
            auto w = r.claim();
            w->fill(w.sequence() * 3 + 1);
            w.publish();
        }
    };
    auto consume = [&](int c) {
        while (consumed.load() < total && std::chrono::steady_clock::now() < deadline) {
            auto rd = r.try_read_for(50ms);
            if (!rd) continue;
            const std::uint64_t seq = rd->sequence();
            const auto v = rd->buffer().to_vector();
            if (!std::all_of(v.begin(), v.end(), [&](std::uint64_t x) { return x == seq * 3 + 1; })) bad.fetch_add(1);
            seen[static_cast<std::size_t>(c)].push_back(seq);
            consumed.fetch_add(1);
        }
    };
    std::vector<std::thread> ts;
    for (int c = 0; c < consumers; ++c) ts.emplace_back(consume, c);
    for (int p = 0; p < producers; ++p) ts.emplace_back(produce);
    for (auto& t : ts) t.join();
    EXPECT_EQ(bad.load(), 0);
    ASSERT_EQ(consumed.load(), total);
    std::vector<std::uint64_t> all;
    for (const auto& s : seen) {
        EXPECT_TRUE(std::is_sorted(s.begin(), s.end())) << "a consumer got items out of order";
        all.insert(all.end(), s.begin(), s.end());
    }
    std::sort(all.begin(), all.end());
    std::vector<std::uint64_t> expected(total);
    std::iota(expected.begin(), expected.end(), 0u);
    EXPECT_EQ(all, expected);
}

// A slow consumer holds item 0 (blocked on a latch) while two producers fill every other slot:
// they are held back, nothing overwrites the held slot, and all items still arrive in order.
TEST(ConcurrentRing, SlowConsumerIsNeverOverwritten) {
    host_backend& dev = unibuf_test::host_env::get();
    constexpr std::size_t slots = 3;
    ring<basic_buffer<std::uint32_t, host_backend, access::read_write>, slots> r(dev, 128);
    constexpr int per_producer = 50, total = 2 * per_producer;
    std::mutex m;
    std::condition_variable cv;
    int published = 0;
    std::latch go_on(1);
    auto produce = [&] {
        for (int i = 0; i < per_producer; ++i) {
            auto w = r.claim();
            w->fill(static_cast<std::uint32_t>(w.sequence()));
            w.publish();
            {
                std::lock_guard lk(m);
                ++published;
            }
            cv.notify_all();
        }
    };
    std::atomic<int> bad{0};
    std::vector<std::uint64_t> order;
    std::thread consumer([&] {
        for (int i = 0; i < total; ++i) {
            auto rd = r.read();
            if (i == 0) go_on.wait();  // the slow part: blocked while holding item 0
            const auto v = rd->to_vector();
            if (!std::all_of(v.begin(), v.end(), [&](std::uint32_t x) { return x == rd.sequence(); })) bad.fetch_add(1);
            order.push_back(rd.sequence());
        }
    });
    std::thread p1(produce), p2(produce);
    {
        // Wait (bounded) until the producers filled every slot but the held one.
        std::unique_lock lk(m);
        ASSERT_TRUE(cv.wait_for(lk, 10s, [&] { return published >= static_cast<int>(slots); }));
    }
    EXPECT_FALSE(r.ready_to_claim());
    EXPECT_EQ(r.claim_blocker().reason, ring_wait::consumer);
    EXPECT_EQ(r.claim_blocker().slot, 0u);
    EXPECT_EQ(r.next_claim_sequence(), slots);
    EXPECT_EQ(r.slot(0).const_view()[0], 0u) << "the held slot was overwritten";
    go_on.count_down();
    p1.join();
    p2.join();
    consumer.join();
    EXPECT_EQ(bad.load(), 0);
    std::vector<std::uint64_t> expected(total);
    std::iota(expected.begin(), expected.end(), 0u);
    EXPECT_EQ(order, expected);
}

// A device consumer: for each item the consumer thread queues device work that checks the slot's
// device memory at the time the device runs it, and releases the slot with that work's fence.
// Producers on two threads must never write a slot before that work ran.
TEST(ConcurrentRing, DeviceConsumerFencesHoldProducersBack) {
    host_backend dev;
    buffer_pool<host_backend, access::read_write> pool(dev, pool_config::with_bytes(64 << 10));
    using buf = decltype(pool)::buffer<std::uint32_t>;
    ring<buf, 3> r(dev, [&](std::size_t) { return pool.acquire<std::uint32_t>(512); });
    constexpr int per_producer = 150, total = 2 * per_producer;
    std::atomic<int> mismatches{0}, checked{0};
    auto produce = [&] {
        for (int i = 0; i < per_producer; ++i) {
            auto w = r.claim();
            std::uint32_t* p = w->data();  // host view = device memory (coherent, zero-copy)
            std::fill(p, p + 512, static_cast<std::uint32_t>(w.sequence()));
            w.publish();
        }
    };
    std::thread consumer([&] {
        for (int i = 0; i < total; ++i) {
            auto rd = r.read();
            const std::byte* mem = rd->allocation().device_data() + rd->byte_offset();
            const auto seq = static_cast<std::uint32_t>(rd.sequence());
            const host_backend::fence f = dev.submit([mem, seq, &mismatches, &checked] {
                const auto* p = reinterpret_cast<const std::uint32_t*>(mem);
                if (!std::all_of(p, p + 512, [&](std::uint32_t x) { return x == seq; })) mismatches.fetch_add(1);
                checked.fetch_add(1);
            });
            rd.release(f);
        }
    });
    std::thread p1(produce), p2(produce);
    p1.join();
    p2.join();
    consumer.join();
    ASSERT_TRUE(dev.wait_idle());
    EXPECT_EQ(checked.load(), total);
    EXPECT_EQ(mismatches.load(), 0) << "a producer wrote a slot the device was still reading";
    EXPECT_TRUE(dev.device_error().empty());
}

} // namespace
