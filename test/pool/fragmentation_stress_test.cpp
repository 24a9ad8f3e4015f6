// Randomized checks of the allocation algorithm against a simple model, and of the pool under
// memory pressure and with many small buffers.
#include "../common/host_env.hpp"
#include "pool_test_util.hpp"

#include <unibuf/transfer/block_allocator.hpp>
#include <unibuf/transfer/pool.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::rng64;

std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// The model: live ranges by offset. It answers "does any gap fit this aligned request?".
struct model {
    std::uint64_t capacity;
    std::map<std::uint64_t, std::uint64_t> live;  // offset -> size

    [[nodiscard]] bool overlaps(std::uint64_t off, std::uint64_t size) const {
        auto it = live.upper_bound(off);
        if (it != live.end() && it->first < off + size) return true;
        if (it != live.begin()) {
            --it;
            if (it->first + it->second > off) return true;
        }
        return false;
    }
    [[nodiscard]] bool some_gap_fits(std::uint64_t size, std::uint64_t align) const {
        std::uint64_t at = 0;
        auto fits = [&](std::uint64_t b, std::uint64_t e) {
            const std::uint64_t o = round_up(b, align);
            return o <= e && e - o >= size;
        };
        for (const auto& [off, sz] : live) {
            if (fits(at, off)) return true;
            at = off + sz;
        }
        return fits(at, capacity);
    }
    [[nodiscard]] std::uint64_t used() const {
        std::uint64_t u = 0;
        for (const auto& kv : live) u += kv.second;
        return u;
    }
};

struct scenario {
    std::uint64_t capacity;
    std::uint64_t granularity;
    std::uint64_t seed;
    int ops;
};

class RandomSequences : public ::testing::TestWithParam<scenario> {};

TEST_P(RandomSequences, MatchTheModelAndCoalesceBackToOneBlock) {
    const scenario sc = GetParam();
    block_allocator a(sc.capacity, sc.granularity, 16);
    model m{a.capacity(), {}};
    std::map<std::uint64_t, std::uint32_t> ids;  // offset -> id
    rng64 r(sc.seed);
    const std::uint64_t g = sc.granularity;
    const std::uint64_t aligns[] = {1, g, 2 * g, 4096, 65536};
    std::uint64_t successes = 0, fragmented = 0, insufficient = 0;
    for (int op = 0; op < sc.ops; ++op) {
        const bool do_alloc = ids.empty() || r.in(0, 99) < 55;
        if (do_alloc) {
            const std::uint64_t kind = r.in(0, 99);
            const std::uint64_t size = kind < 70 ? r.in(1, 4 * g) : kind < 95 ? r.in(1, 64 * g) : r.in(1, sc.capacity / 4);
            const std::uint64_t align = aligns[r.in(0, 4)];
            const block_result res = a.allocate(size, align);
            const std::uint64_t eff_align = std::max(align, g);
            const std::uint64_t rounded = round_up(size, g);
            if (res) {
                ++successes;
                ASSERT_EQ(res.range.offset % eff_align, 0u) << "op " << op;
                ASSERT_EQ(res.range.size, rounded) << "op " << op;
                ASSERT_LE(res.range.offset + res.range.size, m.capacity) << "op " << op;
                ASSERT_FALSE(m.overlaps(res.range.offset, res.range.size)) << "op " << op << ": overlap";
                m.live.emplace(res.range.offset, res.range.size);
                ids.emplace(res.range.offset, res.range.id);
            } else {
                ASSERT_NE(res.status, block_status::invalid_request);
                ASSERT_FALSE(m.some_gap_fits(rounded, eff_align))
                    << "op " << op << ": allocate(" << size << ", " << align << ") failed (" << to_string(res.status)
                    << ") although a free range fits";
                const std::uint64_t free = m.capacity - m.used();
                ASSERT_EQ(res.free_bytes, free);
                if (res.status == block_status::fragmented) {
                    ++fragmented;
                    ASSERT_GE(free, rounded);
                } else if (res.status == block_status::insufficient_space) {
                    ++insufficient;
                    ASSERT_LT(free, rounded);
                } else {
                    ASSERT_EQ(res.status, block_status::too_large);
                    ASSERT_GT(rounded, m.capacity);
                }
            }
        } else {
            auto it = ids.begin();
            std::advance(it, static_cast<long>(r.in(0, ids.size() - 1)));
            a.release(it->second);
            m.live.erase(it->first);
            ids.erase(it);
        }
        ASSERT_EQ(a.used_bytes(), m.used());
        ASSERT_EQ(a.live_ranges(), m.live.size());
        if (op % 97 == 0) {
            ASSERT_EQ(a.check(), "") << "op " << op;
        }
    }
    ASSERT_EQ(a.check(), "");
    EXPECT_GT(successes, 0u);
    EXPECT_GT(fragmented + insufficient, 0u) << "the scenario never ran the block full; make it harder";
    std::vector<std::uint32_t> rest;
    for (const auto& kv : ids) rest.push_back(kv.second);
    for (std::size_t i = rest.size(); i > 1; --i) std::swap(rest[i - 1], rest[r.in(0, i - 1)]);
    for (std::uint32_t id : rest) a.release(id);
    EXPECT_EQ(a.free_blocks(), 1u);
    EXPECT_EQ(a.largest_free(), a.capacity());
    EXPECT_EQ(a.fragmentation(), 0.0);
    EXPECT_EQ(a.check(), "");
}

INSTANTIATE_TEST_SUITE_P(Scenarios, RandomSequences,
                         ::testing::Values(scenario{1 << 20, 64, 1, 60000}, scenario{1 << 20, 256, 2, 60000},
                                           scenario{(1 << 22) + 4096, 1, 3, 60000}, scenario{1 << 16, 64, 4, 60000},
                                           scenario{std::uint64_t{1} << 34, 4096, 5, 30000}));

// Many one-element buffers: fill the pool to the last granule, fail cleanly, recover.
TEST(PoolPressure, ManySmallBuffersFillFailAndRecover) {
    host_backend& dev = unibuf_test::host_env::get();
    constexpr std::size_t n = 20000;
    buffer_pool<host_backend, access::read_write> pool(dev, pool_config::with_bytes(64 * n));
    using buf = decltype(pool)::buffer<std::uint32_t>;
    std::vector<std::optional<buf>> bufs;
    bufs.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        bufs.emplace_back(pool.acquire<std::uint32_t>(1));
        bufs.back()->write(std::vector<std::uint32_t>{i});
    }
    unibuf_test::expect_error([&] { (void)pool.acquire<std::uint32_t>(1); }, errc::capacity_exceeded,
                              {"not enough free space", "0 of 1280000 bytes left", "20000 buffers alive"});
    for (std::size_t i = 0; i < n; i += 2) bufs[i].reset();
    EXPECT_EQ(pool.stats().free_ranges, n / 2);
    unibuf_test::expect_error([&] { (void)pool.acquire<std::uint32_t>(17); }, errc::capacity_exceeded, {"fragmented"});
    for (std::size_t i = 0; i < n; i += 2) {
        bufs[i].emplace(pool.acquire<std::uint32_t>(1));
        bufs[i]->write(std::vector<std::uint32_t>{static_cast<std::uint32_t>(i)});
    }
    for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(bufs[i]->to_vector().front(), i) << "buffer " << i;
    bufs.clear();
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.free_ranges, 1u);
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_EQ(s.peak_live_buffers, n);
    EXPECT_EQ(s.acquires, n + n / 2);
    EXPECT_EQ(s.failed_acquires, 2u);
}

// Repeated fill-to-failure with random sizes and random partial release: every failure is a
// clean capacity_exceeded, and the pool always recovers to one free range.
TEST(PoolPressure, RandomFillUntilFullThenRecover) {
    host_backend& dev = unibuf_test::host_env::get();
    buffer_pool<host_backend, access::read_write, coherence::explicit_flush> pool(dev, pool_config::with_bytes(1 << 20));
    using buf = decltype(pool)::buffer<std::uint16_t>;
    rng64 r(11);
    std::vector<std::optional<buf>> live;
    for (int round = 0; round < 20; ++round) {
        int failures = 0;
        while (failures < 8) {
            std::error_code ec;
            const std::size_t n = static_cast<std::size_t>(r.in(1, 20000));
            auto b = pool.try_acquire<std::uint16_t>(n, ec);
            if (!b) {
                ASSERT_EQ(ec, errc::capacity_exceeded) << ec.message();
                ASSERT_FALSE(pool.can_fit<std::uint16_t>(n));
                ++failures;
                continue;
            }
            b->fill(static_cast<std::uint16_t>(n));
            live.emplace_back(std::move(b));
        }
        // Every live buffer still holds its own tag: no slice overlapped another.
        for (auto& b : live) {
            const auto v = b->to_vector();
            ASSERT_TRUE(std::all_of(v.begin(), v.end(), [&](std::uint16_t x) { return x == static_cast<std::uint16_t>(v.size()); }));
        }
        for (std::size_t i = live.size(); i > 1; --i) std::swap(live[i - 1], live[r.in(0, i - 1)]);
        live.resize(live.size() / 2);
    }
    live.clear();
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.free_ranges, 1u);
    EXPECT_EQ(s.largest_free, s.capacity_bytes);
    EXPECT_EQ(s.acquires, s.releases);
    EXPECT_GE(s.failed_acquires, 160u);
}

// Batches: with at most `n` batches holding memory, begin_batch never fails in a pool sized for
// `n`, whatever the buffer sizes (within the shapes) and whatever order single buffers are released.
TEST(PoolPressure, BatchesNeverFragmentWhateverTheReleaseOrder) {
    host_backend& dev = unibuf_test::host_env::get();
    constexpr std::size_t n = 5;
    buffer_pool<host_backend, access::read_write> pool(
        dev, pool_config::for_batches(n, {buffer_shape::of<float>(1000), buffer_shape::of<std::uint8_t>(300),
                                          buffer_shape::of<double>(77)}));
    using fb = decltype(pool)::buffer<float>;
    using bb = decltype(pool)::buffer<std::uint8_t>;
    using db = decltype(pool)::buffer<double>;
    struct held {
        std::optional<fb> f;
        std::optional<bb> b;
        std::optional<db> d;
        [[nodiscard]] int live() const { return int(f.has_value()) + int(b.has_value()) + int(d.has_value()); }
    };
    std::vector<held> in_flight;
    rng64 r(23);
    int begun = 0;
    for (int step = 0; step < 20000; ++step) {
        if (in_flight.size() < n && r.in(0, 2) != 0) {
            auto batch = pool.begin_batch();  // must never fail: at most n batches hold memory
            held h;
            // Random subset of the shapes, random sizes within them, random acquisition order.
            const std::uint64_t order = r.in(0, 5);
            auto take_f = [&] { if (r.in(0, 3) != 0) h.f.emplace(batch.acquire<float>(r.in(1, 1000))); };
            auto take_b = [&] { if (r.in(0, 3) != 0) h.b.emplace(batch.acquire<std::uint8_t>(r.in(1, 300))); };
            auto take_d = [&] { if (r.in(0, 3) != 0) h.d.emplace(batch.acquire<double>(r.in(1, 77))); };
            if (order < 2) { take_f(); take_b(); take_d(); }
            else if (order < 4) { take_d(); take_f(); take_b(); }
            else { take_b(); take_d(); take_f(); }
            ++begun;
            if (h.live() > 0) in_flight.push_back(std::move(h));
        } else if (!in_flight.empty()) {
            // Release one buffer of a random batch.
            const std::size_t i = r.in(0, in_flight.size() - 1);
            held& h = in_flight[i];
            const std::uint64_t which = r.in(0, 2);
            if (which == 0 && h.f) h.f.reset();
            else if (which == 1 && h.b) h.b.reset();
            else if (h.d) h.d.reset();
            else if (h.f) h.f.reset();
            else h.b.reset();
            if (h.live() == 0) in_flight.erase(in_flight.begin() + static_cast<long>(i));
        }
    }
    in_flight.clear();
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.failed_acquires, 0u);
    EXPECT_EQ(s.batches, static_cast<std::uint64_t>(begun));
    EXPECT_GT(begun, 5000);
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_EQ(s.free_ranges, 1u);
}

} // namespace
