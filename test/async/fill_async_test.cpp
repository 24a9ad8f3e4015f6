// fill_async (async/fill_awaitable.hpp) on the host backend: the awaiting coroutine suspends for
// every wait of a producer's fill; the fill's own waits block the producer's fill thread only.
#include <unibuf/async/fill_awaitable.hpp>
#include <unibuf/async/sync_wait.hpp>
#include <unibuf/async/task.hpp>
#include <unibuf/async/thread_pool.hpp>
#include <unibuf/async/when_all.hpp>
#include <unibuf/backend/host/host_backend.hpp>

#include "../common/expect_error.hpp"
#include "../common/gate.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <stop_token>
#include <utility>
#include <vector>

namespace {

using namespace unibuf;

// Zero-copy host memory the test can read back (fenced: reads wait for the last device use).
using plain = basic_buffer<float, host_backend, access::read_write, coherence::coherent, placement::host, sync::fenced>;

constexpr std::size_t n = 1 << 16;

void expect_filled(plain& b, float offset) {
    const auto v = b.to_vector();
    std::size_t bad = 0;
    for (std::size_t i = 0; i < v.size(); ++i) bad += v[i] != static_cast<float>(i) + offset ? 1 : 0;
    EXPECT_EQ(bad, 0u) << "elements not written as asked";
}

produce_options small_grains() {
    produce_options o;
    o.grain_bytes = 4096;
    o.chunk_bytes = 16384;
    o.min_grains_per_writer = 1;
    return o;
}

// The pool has one thread: if fill_async blocked it, the opener could not run and the writers'
// gate would time out (10 s, then the fill fails). It runs, so the coroutine was suspended.
TEST(FillAsyncHost, SuspendsTheAwaiterWhileTheWritersRun) {
    host_backend dev;
    thread_pool pool(1);
    producer<host_backend> prod(dev, 2, small_grains());
    plain x(dev, n);
    unibuf_test::gate release;
    std::atomic<bool> opened_while_filling{false};
    std::atomic<bool> resumed_on_pool{false};
    auto fill = [&]() -> task<produce_result<host_backend::fence>> {
        co_await pool.schedule();
        auto r = co_await fill_async(
            prod, x,
            [&](write_only_view<float> out, std::size_t first) {
                EXPECT_TRUE(release.wait()) << "the opener never ran: fill_async blocked the pool's thread";
                for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(first + i);
            },
            dev, pool);
        resumed_on_pool = pool.on_worker();
        co_return r;
    };
    auto opener = [&]() -> task<void> {
        co_await pool.schedule();
        opened_while_filling = true;
        release.open();
        co_return;
    };
    auto both = [&]() -> task<produce_result<host_backend::fence>> {
        auto [r, unused] = co_await when_all(fill(), opener());
        (void)unused;
        co_return r;
    };
    const produce_result<host_backend::fence> r = sync_wait(both());
    EXPECT_TRUE(opened_while_filling.load());
    EXPECT_TRUE(resumed_on_pool.load());
    EXPECT_EQ(r.bytes, n * sizeof(float));
    EXPECT_EQ(r.grains, n * sizeof(float) / 4096);
    expect_filled(x, 0.0f);
}

// The staged path through a ring of 2 chunks: writers wait for chunks whose copies are pending,
// the coordinator waits for those copies, all on the producer's threads; every element arrives.
// Two fills in a row: the second awaits the ring's last copy of the first.
TEST(FillAsyncHost, StagedRingWaitsStayOnTheProducersThreads) {
    host_backend dev;
    thread_pool pool(2);
    produce_options o = small_grains();
    o.ring_chunks = 2;
    o.force = produce_path::staged_pipelined;
    producer<host_backend> prod(dev, 3, o);
    plain x(dev, n);
    for (int round = 0; round < 2; ++round) {
        const float offset = static_cast<float>(round * 10);
        auto fill = [&]() -> task<produce_result<host_backend::fence>> {
            co_return co_await fill_async(
                prod, x,
                [offset](write_only_view<float> out, std::size_t first) {
                    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(first + i) + offset;
                },
                dev, pool);
        };
        const auto r = sync_wait(fill());
        EXPECT_EQ(r.path, produce_path::staged_pipelined);
        EXPECT_EQ(r.copies, n * sizeof(float) / 16384);
        EXPECT_GT(prod.ring_bytes(), 0u);
        expect_filled(x, offset);
    }
}

TEST(FillAsyncHost, AWritersExceptionReachesTheAwaiterAndTheProducerStaysUsable) {
    host_backend dev;
    thread_pool pool(2);
    producer<host_backend> prod(dev, 2, small_grains());
    plain x(dev, n);
    auto failing = [&]() -> task<produce_result<host_backend::fence>> {
        co_return co_await fill_async(
            prod, x,
            [](write_only_view<float> out, std::size_t first) {
                if (first == 3 * 1024) throw std::runtime_error("writer failed at element 3072");
                for (std::size_t i = 0; i < out.size(); ++i) out[i] = 0.0f;
            },
            dev, pool);
    };
    try {
        (void)sync_wait(failing());
        ADD_FAILURE() << "the writer's exception was not rethrown";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "writer failed at element 3072");
    }
    auto good = [&]() -> task<produce_result<host_backend::fence>> {
        co_return co_await fill_async(
            prod, x,
            [](write_only_view<float> out, std::size_t first) {
                for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(first + i);
            },
            dev, pool);
    };
    (void)sync_wait(good());
    expect_filled(x, 0.0f);
}

TEST(FillAsyncHost, AStopBeforeTheFillCancelsItAndNothingIsWritten) {
    host_backend dev;
    thread_pool pool(1);
    producer<host_backend> prod(dev, 2, small_grains());
    plain x(dev, n);
    x.fill(-1.0f);
    std::stop_source stop;
    stop.request_stop();
    std::atomic<int> calls{0};
    auto fill = [&]() -> task<produce_result<host_backend::fence>> {
        // Named, not a temporary in the co_await expression (GCC 12 destroys such temporaries twice).
        wait_options w{std::chrono::seconds(10), stop.get_token()};
        auto r = co_await fill_async(prod, x, [&](write_only_view<float>, std::size_t) { calls.fetch_add(1); }, dev, pool,
                                     std::move(w));
        co_return r;
    };
    try {
        (void)sync_wait(fill());
        ADD_FAILURE() << "no cancellation";
    } catch (const std::system_error& e) {
        EXPECT_TRUE(is_cancelled(e)) << e.what();
    }
    EXPECT_EQ(calls.load(), 0);
    const auto v = x.to_vector();
    EXPECT_EQ(v.front(), -1.0f);
    EXPECT_EQ(v.back(), -1.0f);
}

TEST(FillAsyncHost, AnEmptyProducerIsRejected) {
    host_backend dev;
    thread_pool pool(1);
    producer<host_backend> prod(dev, 1);
    producer<host_backend> taker(std::move(prod));
    plain x(dev, 16);
    auto fill = [&]() -> task<produce_result<host_backend::fence>> {
        co_return co_await fill_async(prod, x, [](write_only_view<float>, std::size_t) {}, dev, pool);
    };
    unibuf_test::expect_error([&] { (void)sync_wait(fill()); }, errc::invalid_argument, {"empty (moved-from) producer"});
}

} // namespace
