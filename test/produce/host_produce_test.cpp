// unibuf::producer on the host backend: the shared suite, the path decisions without a backend
// decision function, the writer team, and fills from several threads at once.
#include "../common/expect_error.hpp"
#include "../common/gate.hpp"
#include "../common/host_env.hpp"
#include "../common/produce_tests.hpp"

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>
#include <vector>

namespace unibuf_test {
INSTANTIATE_TYPED_TEST_SUITE_P(Host, ProduceBehaviour, ::testing::Types<host_env>);
} // namespace unibuf_test

namespace {

using namespace unibuf;
using unibuf_test::host_env;
using unibuf_test::value_at;

TEST(HostProducer, WithoutABackendDecisionZeroCopyIsDirectAndDeviceMemoryIsStaged) {
    producer<host_backend> prod(host_env::get(), 2);
    upload_buffer<float, host_backend> up(host_env::get(), 100);
    device_buffer<float, host_backend> dv(host_env::get(), 100);
    const auto a = prod.plan(up);
    EXPECT_EQ(a.path, produce_path::direct) << a.reason;
    const auto b = prod.plan(dv);
    EXPECT_EQ(b.path, produce_path::staged_pipelined) << b.reason;
    EXPECT_NE(b.reason.find("staging"), std::string::npos) << b.reason;
    EXPECT_EQ(prod.ring_bytes(), 0u) << "the ring is made on first need only";
}

TEST(HostProducer, ForcingAPathIsReportedAsForced) {
    produce_options o;
    o.force = produce_path::staged_pipelined;
    producer<host_backend> prod(host_env::get(), 2, o);
    upload_buffer<float, host_backend> up(host_env::get(), 100);
    const auto p = prod.plan(up);
    EXPECT_EQ(p.path, produce_path::staged_pipelined);
    EXPECT_NE(p.reason.find("forced"), std::string::npos) << p.reason;
}

TEST(HostProducer, AWriterWaitsForARingChunkBoundedAndTheErrorNamesTheChunk) {
    // The device is held, so the first two chunks' copies cannot run: the writer of the third
    // chunk waits for ring slot 0 until the bound, and the fill fails naming what it waited for.
    host_backend dev;
    unibuf_test::gate held;
    dev.submit([&held] { held.wait(); });
    produce_options o = unibuf_test::tiny_options(produce_path::staged_pipelined);
    o.wait_timeout = std::chrono::milliseconds(50);
    producer<host_backend> prod(dev, 1, o);
    constexpr std::size_t chunk_elems = 3 * 4096 / sizeof(std::uint32_t);
    upload_buffer<std::uint32_t, host_backend> buf(dev, 5 * chunk_elems);
    const auto job = [](write_only_view<std::uint32_t> out, std::size_t first) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<std::uint32_t>(first + i, 4);
    };
    // The copy of chunk 0 holds ring slot 0.
    unibuf_test::expect_error([&] { prod.fill(buf, job); }, errc::timeout, {"chunk 0", "50 ms"});
    held.open();  // the device runs again: the producer and the buffer are usable
    const auto r = prod.fill(buf, job);
    EXPECT_EQ(r.copies, 5u);
    basic_buffer<std::uint32_t, host_backend, access::read_write, placement::host, sync::fenced> out(dev, buf.size());
    out.copy_from(buf);
    const auto got = out.to_vector();
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_at<std::uint32_t>(i, 4)) << "element " << i;
}

TEST(HostProducer, ABufferOfAnotherBackendObjectIsRejected) {
    host_backend other;
    producer<host_backend> prod(host_env::get(), 1);
    upload_buffer<float, host_backend> up(other, 10);
    unibuf_test::expect_error(
        [&] {
            prod.fill(up, [](write_only_view<float> out, std::size_t) {
                for (std::size_t i = 0; i < out.size(); ++i) out[i] = 0.0f;
            });
        },
        errc::invalid_argument, {"another backend"});
}

TEST(HostProducer, TheTeamRunsEveryThreadOncePerJob) {
    writer_team team(4);
    for (int round = 0; round < 50; ++round) {
        std::vector<std::atomic<int>> ran(4);
        std::atomic<int> caller{0};
        team.run([&](unsigned i) { ran[i].fetch_add(1); }, [&] { caller.fetch_add(1); });
        for (auto& r : ran) ASSERT_EQ(r.load(), 1) << "round " << round;
        ASSERT_EQ(caller.load(), 1);
    }
    unibuf_test::expect_error([] { writer_team team(0); }, errc::invalid_argument, {"0 threads"});
}

TEST(HostProducer, AJobForFewerThreadsRunsOnlyThoseAndLeavesTheOthersForTheNextJob) {
    writer_team team(6);
    for (unsigned want : {1u, 3u, 6u, 2u, 0u}) {  // 0: every thread
        std::vector<std::atomic<int>> ran(6);
        team.run([&](unsigned i) { ran[i].fetch_add(1); }, [] {}, want);
        const unsigned n = want == 0 ? 6u : want;
        for (unsigned i = 0; i < 6; ++i) ASSERT_EQ(ran[i].load(), i < n ? 1 : 0) << "job for " << want << ", thread " << i;
    }
}

TEST(HostProducer, AFillUsesOnlyTheWritersItHasGrainsFor) {
    host_backend dev;
    produce_options o;
    o.grain_bytes = 1024;          // 256 floats a grain
    o.min_grains_per_writer = 4;
    producer<host_backend> prod(dev, 8, o);
    for (const auto& [elements, writers] : {std::pair<std::size_t, unsigned>{256 * 16, 4},   // 16 grains: 4 writers
                                            {256 * 3, 1},                                    // 3 grains: 1 writer
                                            {256 * 29, 8},                                   // 29 grains: 8 (the team)
                                            {256 * 256, 8}}) {
        upload_buffer<float, host_backend> buf(dev, elements);
        std::mutex m;
        std::set<std::thread::id> ids;
        const auto r = prod.fill(buf, [&](write_only_view<float> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<float>(first + i, 7);
            std::lock_guard lk(m);
            ids.insert(std::this_thread::get_id());
        });
        EXPECT_EQ(r.threads, writers) << elements << " elements";
        EXPECT_LE(ids.size(), writers) << elements << " elements: writers that ran";
        EXPECT_TRUE(buf.wait(std::chrono::seconds(10)));
    }
    produce_options zero;
    zero.min_grains_per_writer = 0;
    unibuf_test::expect_error([&] { producer<host_backend> p(dev, 2, zero); }, errc::invalid_argument,
                              {"min_grains_per_writer"});
}

TEST(HostProducer, DestroyingTheProducerWaitsForItsRingNoLongerThanItsTimeout) {
    // The ring's last copies are queued behind held device work. The destructor waits for them
    // at most produce_options::wait_timeout (it used the backend's 10 s default); the copies,
    // which keep the ring's memory alive, still deliver the data once the device runs again.
    host_backend dev;
    produce_options o = unibuf_test::tiny_options(produce_path::staged_pipelined);
    o.wait_timeout = std::chrono::milliseconds(50);
    constexpr std::size_t chunk_elems = 3 * 4096 / sizeof(std::uint32_t);
    upload_buffer<std::uint32_t, host_backend> buf(dev, 2 * chunk_elems);  // two chunks: no slot wait
    unibuf_test::gate held;
    dev.submit([&held] { held.wait(); });
    auto prod = std::make_unique<producer<host_backend>>(dev, 1, o);
    const auto r = prod->fill(buf, [](write_only_view<std::uint32_t> out, std::size_t first) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<std::uint32_t>(first + i, 41);
    });
    EXPECT_EQ(r.copies, 2u);
    EXPECT_FALSE(dev.is_complete(r.fence));
    const auto t0 = std::chrono::steady_clock::now();
    prod.reset();
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, std::chrono::milliseconds(50));
    EXPECT_LT(took, std::chrono::seconds(5)) << "the destructor waited past the producer's 50 ms";
    held.open();
    ASSERT_TRUE(dev.wait(r.fence, default_wait_timeout));
    EXPECT_EQ(dev.device_error(), "");
    basic_buffer<std::uint32_t, host_backend, access::read_write, placement::host, sync::fenced> out(dev, buf.size());
    out.copy_from(buf);
    const auto got = out.to_vector();
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_at<std::uint32_t>(i, 41)) << "element " << i;
}

TEST(HostProducer, AFillWaitsForThePreviousFillsRingCopiesNoLongerThanItsTimeout) {
    host_backend dev;
    produce_options o = unibuf_test::tiny_options(produce_path::staged_pipelined);
    o.wait_timeout = std::chrono::milliseconds(50);
    producer<host_backend> prod(dev, 2, o);
    constexpr std::size_t chunk_elems = 3 * 4096 / sizeof(std::uint32_t);
    upload_buffer<std::uint32_t, host_backend> first(dev, 2 * chunk_elems);
    upload_buffer<std::uint32_t, host_backend> second(dev, chunk_elems + 5);
    const auto job = [](std::uint32_t seed) {
        return [seed](write_only_view<std::uint32_t> out, std::size_t at) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<std::uint32_t>(at + i, seed);
        };
    };
    unibuf_test::gate held;
    dev.submit([&held] { held.wait(); });
    prod.fill(first, job(51));  // its two copies wait behind the held work
    const std::uint64_t ring = prod.ring_bytes();
    unibuf_test::expect_error([&] { prod.fill(second, job(52)); }, errc::timeout,
                              {"staging ring's last copy", "within 50 ms"});
    EXPECT_EQ(prod.ring_bytes(), ring);
    held.open();
    const auto r = prod.fill(second, job(52));
    EXPECT_EQ(r.copies, 2u);
    for (auto* b : {&first, &second}) {
        basic_buffer<std::uint32_t, host_backend, access::read_write, placement::host, sync::fenced> out(dev, b->size());
        out.copy_from(*b);
        const auto got = out.to_vector();
        const std::uint32_t seed = b == &first ? 51 : 52;
        for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_at<std::uint32_t>(i, seed)) << "element " << i;
    }
}

TEST(HostProducer, ATeamThatSpinsForTheLargestDurationStillRunsAndStops) {
    // The spin deadline saturates: now() + nanoseconds::max() would overflow the clock.
    writer_team team(2, std::chrono::nanoseconds::max());
    std::atomic<int> ran{0};
    for (int round = 0; round < 3; ++round) team.run([&](unsigned) { ran.fetch_add(1); }, [] {});
    EXPECT_EQ(ran.load(), 6);
}

static_assert(!std::is_copy_constructible_v<writer_team> && !std::is_move_constructible_v<writer_team>,
              "a writer team is never empty: its threads refer to it");
static_assert(std::is_nothrow_move_constructible_v<producer<host_backend>> &&
              std::is_nothrow_move_assignable_v<producer<host_backend>> &&
              !std::is_copy_constructible_v<producer<host_backend>>);

TEST(HostProducer, SeveralProducersFillSeveralBuffersAtOnce) {
    constexpr int fillers = 3;
    std::vector<std::thread> ts;
    std::atomic<int> bad{0};
    for (int t = 0; t < fillers; ++t)
        ts.emplace_back([&, t] {
            produce_options o = unibuf_test::tiny_options(t % 2 == 0 ? produce_path::staged_pipelined : produce_path::direct);
            producer<host_backend> prod(host_env::get(), 2, o);
            basic_buffer<std::uint32_t, host_backend, access::read_write, placement::host, sync::fenced> out(
                host_env::get(), 20000);
            upload_buffer<std::uint32_t, host_backend> buf(host_env::get(), 20000);
            for (int round = 0; round < 5; ++round) {
                const auto seed = static_cast<std::uint32_t>(100 * t + round);
                prod.fill(buf, [&](write_only_view<std::uint32_t> v, std::size_t first) {
                    for (std::size_t i = 0; i < v.size(); ++i) v[i] = value_at<std::uint32_t>(first + i, seed);
                });
                out.copy_from(buf);
                const auto got = out.to_vector();
                for (std::size_t i = 0; i < got.size(); ++i)
                    if (got[i] != value_at<std::uint32_t>(i, seed)) {
                        bad.fetch_add(1);
                        break;
                    }
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(bad.load(), 0);
}

} // namespace
