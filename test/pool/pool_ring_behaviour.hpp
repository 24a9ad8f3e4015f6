// Pool and ring behaviour tests every backend runs: one typed suite, instantiated per environment.
//
// An environment `Env` provides:
//   using backend = <backend type>;
//   static backend& get();        // one backend per process
// Optional: static void expect_clean();  // fails the test for validation/debug messages
//
// Only the `Backend` concept is used (allocate, flush, invalidate, copy, wait, is_complete,
// limits): the "device work" of these tests is the backend's device-side copy, so the same
// tests run on the host, Vulkan and OpenGL backends (checked on lavapipe and llvmpipe). The
// concurrent test runs the ring on several threads; they touch host memory only and ask the
// backend `is_complete` of fences that are complete (allowed off a GL context's thread).
//
// Instantiate inside namespace unibuf_test (where the suite lives):
//   namespace unibuf_test {
//   INSTANTIATE_TYPED_TEST_SUITE_P(Vulkan, PoolRingBehaviour, ::testing::Types<vulkan_env>);
//   }
#pragma once

#include "counting_backend.hpp"
#include "pool_test_util.hpp"

#include <unibuf/buffer/basic_buffer.hpp>
#include <unibuf/transfer/pool.hpp>
#include <unibuf/transfer/ring.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

namespace unibuf_test {

/// An over-aligned element type (128 bytes, above the cache line).
struct alignas(128) wide_element {
    float v[8];
};

template <class Env>
class PoolRingBehaviour : public ::testing::Test {
protected:
    void TearDown() override {
        if constexpr (requires { Env::expect_clean(); }) Env::expect_clean();
    }
};

TYPED_TEST_SUITE_P(PoolRingBehaviour);

namespace pool_behaviour {

template <class Buf>
struct placed {
    std::uint64_t offset, size, align;
    const void* memory;
};

template <class Buf>
placed<Buf> where(const Buf& b) {
    return {b.byte_offset(), b.size_bytes(), alignof(typename Buf::value_type), &b.allocation()};
}

template <class T>
std::vector<T> iota_of(std::size_t n, T base) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(base + static_cast<T>(i));
    return v;
}

} // namespace pool_behaviour

// Every slice is aligned to its type, the cache line, the granule and the device's storage-offset
// alignment; slices are disjoint and inside the one block the pool allocated.
TYPED_TEST_P(PoolRingBehaviour, SlicesAreAlignedDisjointAndInsideTheBlock) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::buffer_pool<B, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(1 << 20));
    const unibuf::device_limits lim = dev.limits();
    EXPECT_GE(pool.granularity(), 64u);
    EXPECT_EQ(pool.granularity() % lim.min_storage_offset_alignment, 0u);

    auto f1 = pool.template acquire<float>(1);
    auto f3 = pool.template acquire<float>(3);
    auto f1000 = pool.template acquire<float>(1000);
    auto d17 = pool.template acquire<double>(17);
    auto c1 = pool.template acquire<char>(1);
    auto w2 = pool.template acquire<wide_element>(2);
    using pool_behaviour::where;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (auto p : {where(f1), where(f3), where(f1000)}) ranges.emplace_back(p.offset, p.size);
    const void* memory = &f1.allocation();
    auto check = [&](auto p, std::uint64_t block_size) {
        EXPECT_EQ(p.offset % pool.granularity(), 0u);
        EXPECT_EQ(p.offset % 64, 0u);
        EXPECT_EQ(p.offset % lim.min_storage_offset_alignment, 0u);
        EXPECT_EQ(p.offset % p.align, 0u);
        EXPECT_LE(p.offset + p.size, block_size);
        EXPECT_EQ(p.memory, memory) << "all slices of a one-block pool share its allocation";
    };
    const std::uint64_t block = f1.allocation().size();
    check(where(f1), block);
    check(where(f3), block);
    check(where(f1000), block);
    check(where(d17), block);
    check(where(c1), block);
    check(where(w2), block);
    ranges.emplace_back(d17.byte_offset(), d17.size_bytes());
    ranges.emplace_back(c1.byte_offset(), c1.size_bytes());
    ranges.emplace_back(w2.byte_offset(), w2.size_bytes());
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i)
        EXPECT_LE(ranges[i - 1].first + ranges[i - 1].second, ranges[i].first) << "slices overlap";
    EXPECT_EQ(pool.stats().live_buffers, 6u);
}

// Data written to each slice comes back unchanged: no slice writes into another.
TYPED_TEST_P(PoolRingBehaviour, DataRoundTripsThroughEverySlice) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::buffer_pool<B, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(256 << 10));
    std::vector<typename decltype(pool)::template buffer<std::uint32_t>> bufs;
    for (std::uint32_t i = 0; i < 24; ++i) bufs.push_back(pool.template acquire<std::uint32_t>(1 + 37 * i));
    for (std::uint32_t i = 0; i < bufs.size(); ++i)
        bufs[i].write(pool_behaviour::iota_of<std::uint32_t>(bufs[i].size(), 1000 * i));
    for (std::uint32_t i = 0; i < bufs.size(); ++i)
        EXPECT_EQ(bufs[i].to_vector(), pool_behaviour::iota_of<std::uint32_t>(bufs[i].size(), 1000 * i)) << "slice " << i;
}

// A device-side copy between two slices reads and writes exactly their ranges.
TYPED_TEST_P(PoolRingBehaviour, DeviceCopyBetweenSlicesUsesTheirOffsets) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::buffer_pool<B, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(256 << 10));
    auto before = pool.template acquire<int>(16);
    auto src = pool.template acquire<int>(1000);
    auto dst = pool.template acquire<int>(1000);
    auto after = pool.template acquire<int>(16);
    before.fill(-1);
    after.fill(-2);
    src.write(pool_behaviour::iota_of<int>(1000, 5));
    dst.fill(0);
    const auto f = dst.copy_from(src);
    ASSERT_TRUE(dev.wait(f, unibuf::default_wait_timeout));
    EXPECT_EQ(dst.to_vector(), pool_behaviour::iota_of<int>(1000, 5));
    EXPECT_EQ(before.to_vector(), std::vector<int>(16, -1));
    EXPECT_EQ(after.to_vector(), std::vector<int>(16, -2));
}

// A request that does not fit fails with capacity_exceeded naming the request and what is left;
// the pool stays usable; try_acquire/can_fit agree.
TYPED_TEST_P(PoolRingBehaviour, CapacityErrorNamesTheRequestAndWhatIsLeft) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::buffer_pool<B, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(64 << 10));
    ASSERT_EQ(pool.stats().capacity_bytes, 64u << 10);
    auto half = pool.template acquire<std::byte>(32 << 10);
    EXPECT_FALSE(pool.template can_fit<std::byte>(40000));
    EXPECT_TRUE(pool.template can_fit<std::byte>(16 << 10));
    expect_error([&] { (void)pool.template acquire<std::byte>(40000); }, unibuf::errc::capacity_exceeded,
                 {"40000 elements", "40000 bytes", "32768 of 65536 bytes left", "growth is off"});
    std::error_code ec;
    auto none = pool.template try_acquire<std::byte>(40000, ec);
    EXPECT_FALSE(none.has_value());
    EXPECT_EQ(ec, unibuf::errc::capacity_exceeded);
    expect_error([&] { (void)pool.template acquire<float>(0); }, unibuf::errc::invalid_argument, {"0 elements"});
    auto quarter = pool.template acquire<std::byte>(16 << 10);  // still usable
    quarter.fill(std::byte{7});
    EXPECT_EQ(quarter.to_vector(), std::vector<std::byte>(16 << 10, std::byte{7}));
    const unibuf::pool_stats s = pool.stats();
    EXPECT_EQ(s.failed_acquires, 2u);  // the 0-element request never reached the ranges
    EXPECT_EQ(s.acquires, 2u);
    EXPECT_EQ(s.bytes_in_use, 48u << 10);
}

// Enough bytes free in total but no contiguous range: the error says the space is fragmented;
// releasing everything coalesces back into one free range.
TYPED_TEST_P(PoolRingBehaviour, FragmentationIsReportedAndCoalescesAway) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::pool_config cfg;
    cfg.block_bytes = 1;  // rounded up to one granule, then we size by granules
    const std::uint64_t g = unibuf::buffer_pool<B, unibuf::access::read_write>::granularity_for(dev.limits(), cfg);
    unibuf::buffer_pool<B, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(8 * g));
    using buf = typename decltype(pool)::template buffer<std::byte>;
    std::vector<std::optional<buf>> held;
    for (int i = 0; i < 8; ++i) held.emplace_back(pool.template acquire<std::byte>(g));
    EXPECT_FALSE(pool.template can_fit<std::byte>(1));
    for (int i = 1; i < 8; i += 2) held[static_cast<std::size_t>(i)].reset();
    unibuf::pool_stats s = pool.stats();
    EXPECT_EQ(s.free_ranges, 4u);
    EXPECT_EQ(s.largest_free, g);
    EXPECT_DOUBLE_EQ(s.fragmentation, 0.75);
    expect_error([&] { (void)pool.template acquire<std::byte>(2 * g); }, unibuf::errc::capacity_exceeded,
                 {"fragmented", ("largest contiguous free range " + std::to_string(g) + " bytes").c_str()});
    EXPECT_TRUE(pool.template can_fit<std::byte>(g));
    held.clear();
    s = pool.stats();
    EXPECT_EQ(s.free_ranges, 1u);
    EXPECT_EQ(s.largest_free, 8 * g);
    EXPECT_EQ(s.fragmentation, 0.0);
    EXPECT_EQ(s.bytes_in_use, 0u);
    auto all = pool.template acquire<std::byte>(8 * g);
    EXPECT_EQ(all.byte_offset(), 0u);
}

// Steady state never calls the backend's allocate: a pool sized for exactly 4 batches runs 500
// batches of varying sizes with 4 in flight (FIFO, like a pipeline), and a second pool serves
// free-standing buffers of varying sizes; statistics add up.
TYPED_TEST_P(PoolRingBehaviour, NoBackendAllocationInSteadyState) {
    using B = typename TypeParam::backend;
    counting_backend<B> dev(TypeParam::get());
    using pool_t = unibuf::buffer_pool<counting_backend<B>, unibuf::access::read_write>;
    const unibuf::pool_config cfg =
        unibuf::pool_config::for_batches(4, {unibuf::buffer_shape::of<float>(1024), unibuf::buffer_shape::of<int>(256)});
    const std::uint64_t per_batch = pool_t::batch_bytes_for(cfg, pool_t::granularity_for(dev.limits(), cfg));
    pool_t pool(dev, cfg);
    pool_t loose_pool(dev, unibuf::pool_config::with_bytes(64 << 10));
    ASSERT_EQ(dev.allocations(), 2u);
    EXPECT_GE(per_batch, 1024 * 4 + 256 * 4);
    EXPECT_EQ(pool.stats().capacity_bytes, 4 * per_batch);
    using fbuf = typename decltype(pool)::template buffer<float>;
    using ibuf = typename decltype(pool)::template buffer<int>;
    std::deque<std::pair<fbuf, ibuf>> in_flight;
    std::deque<fbuf> loose;
    rng64 r(7);
    std::uint64_t elements = 0, peak_batch = 0;
    for (int n = 0; n < 500; ++n) {
        const std::size_t nf = r.in(1, 1024), ni = r.in(1, 256);
        {
            auto batch = pool.begin_batch();
            in_flight.emplace_back(batch.template acquire<float>(nf), batch.template acquire<int>(ni));
            peak_batch = std::max(peak_batch, per_batch - batch.bytes_left());
        }  // ended; the region stays with the two buffers
        elements += nf + ni;
        in_flight.back().first.fill(static_cast<float>(n));
        in_flight.back().second.fill(n);
        loose.push_back(loose_pool.template acquire<float>(r.in(1, 512)));
        elements += loose.back().size();
        if (loose.size() == 8) loose.pop_front();
        if (in_flight.size() == 4) {
            EXPECT_EQ(in_flight.front().second.to_vector().front(), n - 3);
            EXPECT_EQ(in_flight.front().first.to_vector().back(), static_cast<float>(n - 3));
            in_flight.pop_front();
        }
    }
    in_flight.clear();
    loose.clear();
    EXPECT_EQ(dev.allocations(), 2u) << "steady state must not allocate from the backend";
    const unibuf::pool_stats s = pool.stats();
    const unibuf::pool_stats ls = loose_pool.stats();
    EXPECT_EQ(s.acquires, 1000u);
    EXPECT_EQ(s.releases, 1000u);
    EXPECT_EQ(s.allocations_avoided, 1500u);  // 1000 buffers and 500 batch regions
    EXPECT_EQ(s.backend_allocations, 1u);
    EXPECT_EQ(ls.acquires, 500u);
    EXPECT_EQ(ls.allocations_avoided, 500u);
    EXPECT_EQ(ls.bytes_in_use, 0u);
    EXPECT_EQ(ls.free_ranges, 1u);
    EXPECT_EQ(s.elements + ls.elements, elements);
    EXPECT_EQ(s.batches, 500u);
    EXPECT_EQ(s.open_batches, 0u);
    EXPECT_EQ(s.batch_bytes, per_batch);
    EXPECT_EQ(s.peak_batch_bytes, peak_batch);
    EXPECT_LE(s.largest_buffer_elements, 1024u);
    EXPECT_EQ(s.live_buffers, 0u);
    EXPECT_LE(s.peak_live_buffers, 8u);
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_EQ(s.failed_acquires, 0u);
    EXPECT_EQ(s.free_ranges, 1u);
}

// A pool sized for N batches holds exactly N: the next one fails and says how many hold memory;
// a batch's region returns when the batch ended and its last buffer is gone.
TYPED_TEST_P(PoolRingBehaviour, BatchesFitExactlyAsConfigured) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::buffer_pool<B, unibuf::access::read_write> pool(
        dev, unibuf::pool_config::for_batches(3, {unibuf::buffer_shape::of<float>(1000), unibuf::buffer_shape::of<int>(10)}));
    const std::uint64_t per_batch = pool.stats().batch_bytes;
    EXPECT_EQ(pool.stats().capacity_bytes, 3 * per_batch);
    using fb = typename decltype(pool)::template buffer<float>;
    std::vector<std::optional<fb>> keep;
    {
        std::vector<typename decltype(pool)::batch> open;
        for (int i = 0; i < 3; ++i) {
            open.push_back(pool.begin_batch());
            keep.emplace_back(open.back().template acquire<float>(1000));
            auto small = open.back().template acquire<int>(10);
            small.fill(i);
            EXPECT_EQ(open.back().bytes_left(), per_batch - pool.granularity() * ((4000 + pool.granularity() - 1) / pool.granularity()) -
                                                   pool.granularity() * ((40 + pool.granularity() - 1) / pool.granularity()));
        }
        expect_error([&] { (void)pool.begin_batch(); }, unibuf::errc::capacity_exceeded,
                     {"begin a batch", "3 batches hold memory, 3 of them not ended", "sized for 3"});
        expect_error([&] { (void)open.front().template acquire<int>(1); }, unibuf::errc::capacity_exceeded,
                     {"in a batch", "0 of the batch's"});
        EXPECT_EQ(pool.stats().open_batches, 3u);
    }  // all ended; each region is held by its kept float buffer
    EXPECT_EQ(pool.stats().open_batches, 0u);
    EXPECT_EQ(pool.stats().batches, 3u);
    std::error_code ec;
    EXPECT_FALSE(pool.try_begin_batch(ec).has_value());
    EXPECT_EQ(ec, unibuf::errc::capacity_exceeded);
    keep[1].reset();  // region 1 is free again
    auto again = pool.begin_batch();
    auto big = again.template acquire<float>(1000);
    big.fill(1.5f);
    EXPECT_EQ(big.to_vector(), std::vector<float>(1000, 1.5f));
    keep.clear();
    again.end();
    EXPECT_EQ(pool.stats().bytes_in_use, per_batch);  // only `again`'s region: big is alive
}

// Growth (opt-in) adds blocks; a failed growth is a clean out_of_memory and the pool stays usable;
// trim returns empty grown blocks.
TYPED_TEST_P(PoolRingBehaviour, GrowthAndOutOfMemoryLeaveThePoolUsable) {
    using B = typename TypeParam::backend;
    counting_backend<B> dev(TypeParam::get());
    unibuf::pool_config cfg = unibuf::pool_config::with_bytes(64 << 10);
    cfg.growth = unibuf::pool_growth::add_blocks;
    cfg.max_blocks = 3;
    unibuf::buffer_pool<counting_backend<B>, unibuf::access::read_write> pool(dev, cfg);
    auto a = pool.template acquire<std::byte>(60 << 10);
    auto b = std::optional(pool.template acquire<std::byte>(32 << 10));  // does not fit: a second block
    EXPECT_EQ(dev.allocations(), 2u);
    EXPECT_NE(&a.allocation(), &b->allocation());
    EXPECT_EQ(pool.stats().blocks, 2u);
    dev.fail_next_allocations(1);
    expect_error([&] { (void)pool.template acquire<std::byte>(60 << 10); }, unibuf::errc::out_of_memory,
                 {"growing it failed", "still usable"});
    EXPECT_EQ(pool.stats().blocks, 2u);
    auto d = std::optional(pool.template acquire<std::byte>(1 << 10));  // fits in a block the pool holds
    d->fill(std::byte{3});
    EXPECT_EQ(d->to_vector(), std::vector<std::byte>(1 << 10, std::byte{3}));
    auto c = pool.template acquire<std::byte>(60 << 10);  // third block
    EXPECT_EQ(pool.stats().blocks, 3u);
    expect_error([&] { (void)pool.template acquire<std::byte>(60 << 10); }, unibuf::errc::capacity_exceeded,
                 {"max_blocks = 3"});
    b.reset();
    d.reset();
    EXPECT_EQ(pool.trim(), 64u << 10);  // the second block is empty now
    EXPECT_EQ(pool.stats().blocks, 2u);
    auto e = pool.template acquire<std::byte>(60 << 10);  // grows again into the freed slot
    EXPECT_EQ(pool.stats().blocks, 3u);
    EXPECT_EQ(pool.stats().backend_allocations, 4u);
}

// Requests no block can hold fail with capacity_exceeded naming the element count and element
// size: a byte size that overflows 64 bits, one that rounds past 2^64, one above the device's
// max_allocation_size, a batch of such bytes. With growth on, none of them adds a block: the pool
// is unchanged (statistics, blocks, backend allocations), and a valid request that needs a new
// block still gets one (max_blocks = 2: a single useless block would make it fail).
TYPED_TEST_P(PoolRingBehaviour, ImpossibleRequestsLeaveThePoolUnchanged) {
    using B = typename TypeParam::backend;
    counting_backend<B> dev(TypeParam::get());
    dev.limit_max_allocation_size(1 << 20);
    unibuf::pool_config cfg = unibuf::pool_config::with_bytes(64 << 10);
    cfg.growth = unibuf::pool_growth::add_blocks;
    cfg.max_blocks = 2;
    unibuf::buffer_pool<counting_backend<B>, unibuf::access::read_write> pool(dev, cfg);
    auto first = pool.template acquire<std::byte>(64 << 10);  // the first block is full
    const unibuf::pool_stats before = pool.stats();
    const std::uint64_t allocations = dev.allocations();
    constexpr std::size_t huge = SIZE_MAX / 8;  // 2^64 - 8 bytes of doubles: no 64-bit wrap, no block holds it
    expect_error([&] { (void)pool.template acquire<double>(huge); }, unibuf::errc::capacity_exceeded,
                 {"2305843009213693951 elements of 8 bytes", "the pool is unchanged"});
    expect_error([&] { (void)pool.template acquire<double>(huge + 2); }, unibuf::errc::capacity_exceeded,
                 {"2305843009213693953 elements of 8 bytes", "overflows 64 bits"});
    expect_error([&] { (void)pool.template acquire<float>((2 << 20) / 4); }, unibuf::errc::capacity_exceeded,
                 {"524288 elements of 4 bytes", "larger than the largest block the pool may add (1048576 bytes",
                  "no block was added"});
    expect_error([&] { (void)pool.begin_batch(~std::uint64_t{0} - 8); }, unibuf::errc::capacity_exceeded,
                 {"begin a batch of 18446744073709551607 bytes", "no block was added"});
    std::error_code ec;
    EXPECT_FALSE(pool.template try_acquire<double>(huge, ec).has_value());
    EXPECT_EQ(ec, unibuf::errc::capacity_exceeded);
    EXPECT_FALSE(pool.try_begin_batch(ec, std::uint64_t{1} << 62).has_value());
    EXPECT_EQ(ec, unibuf::errc::capacity_exceeded);
    EXPECT_FALSE(pool.template can_fit<double>(huge));
    EXPECT_FALSE(pool.template can_fit<double>(huge + 2));
    const unibuf::pool_stats after = pool.stats();
    EXPECT_EQ(dev.allocations(), allocations) << "an impossible request called the backend";
    EXPECT_EQ(after.blocks, 1u);
    EXPECT_EQ(after.capacity_bytes, before.capacity_bytes);
    EXPECT_EQ(after.backend_allocations, before.backend_allocations);
    EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
    EXPECT_EQ(after.live_buffers, before.live_buffers);
    EXPECT_EQ(after.acquires, before.acquires);
    EXPECT_EQ(after.open_batches, 0u);
    // Requests beyond any block a pool can hold are refused on their arguments (not counted);
    // those that searched the blocks count as failed: the 1 MiB+ acquire and the two batches.
    EXPECT_EQ(after.failed_acquires, before.failed_acquires + 3);
    auto grown = pool.template acquire<std::byte>(32 << 10);  // needs the second block
    EXPECT_EQ(pool.stats().blocks, 2u);
    EXPECT_EQ(dev.allocations(), allocations + 1);
    grown.fill(std::byte{9});
    EXPECT_EQ(grown.to_vector(), std::vector<std::byte>(32 << 10, std::byte{9}));
}

// Pool creation that the backend cannot satisfy fails cleanly (try_create) with out_of_memory.
TYPED_TEST_P(PoolRingBehaviour, CreationFailureIsClean) {
    using B = typename TypeParam::backend;
    counting_backend<B> dev(TypeParam::get());
    dev.fail_next_allocations(1);
    std::error_code ec;
    auto p = unibuf::buffer_pool<counting_backend<B>, unibuf::access::read_write>::try_create(
        dev, unibuf::pool_config::with_bytes(1 << 20), ec);
    EXPECT_FALSE(p.has_value());
    EXPECT_EQ(ec, unibuf::errc::out_of_memory);
    expect_error([&] { (void)unibuf::buffer_pool<counting_backend<B>>(dev, unibuf::pool_config{}); },
                 unibuf::errc::invalid_argument, {"no size"});
    auto q = unibuf::buffer_pool<counting_backend<B>, unibuf::access::read_write>::try_create(
        dev, unibuf::pool_config::with_bytes(1 << 20), ec);
    ASSERT_TRUE(q.has_value()) << ec.message();
    EXPECT_FALSE(ec);
    auto b = q->template acquire<int>(10);
    b.fill(1);
    EXPECT_EQ(b.to_vector(), std::vector<int>(10, 1));
}

// explicit_flush slices: offsets and sizes in whole non-coherent atoms, and device writes to one
// slice survive a host flush of its neighbour (on non-coherent memory a shared atom would lose them).
TYPED_TEST_P(PoolRingBehaviour, ExplicitFlushSlicesNeverShareAnAtom) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::buffer_pool<B, unibuf::access::read_write, unibuf::coherence::explicit_flush, unibuf::sync::fenced> pool(
        dev, unibuf::pool_config::with_bytes(64 << 10));
    const std::uint64_t atom = dev.limits().non_coherent_atom;
    EXPECT_EQ(pool.granularity() % atom, 0u);
    auto a = pool.template acquire<float>(3);
    auto b = pool.template acquire<float>(3);
    auto src = pool.template acquire<float>(3);
    EXPECT_EQ(a.byte_offset() % atom, 0u);
    EXPECT_EQ(b.byte_offset() % atom, 0u);
    const std::uint64_t lo = std::min(a.byte_offset(), b.byte_offset()), hi = std::max(a.byte_offset(), b.byte_offset());
    EXPECT_GE(hi - lo, (12 + atom - 1) / atom * atom);
    a.write(std::vector<float>{0, 0, 0});
    src.write(std::vector<float>{1, 2, 3});
    const auto f = b.copy_from(src);  // the device writes b
    ASSERT_TRUE(dev.wait(f, unibuf::default_wait_timeout));
    a.write(std::vector<float>{9, 9, 9});  // host write + flush of a's atoms
    EXPECT_EQ(b.to_vector(), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(a.to_vector(), (std::vector<float>{9, 9, 9}));
}

// The ring hands out slots in sequence order; with all slots in flight try_claim fails, claim
// times out (bounded) saying why, and a release makes the slot claimable again.
TYPED_TEST_P(PoolRingBehaviour, RingOrderAndAllSlotsInFlight) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::buffer_pool<B, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(64 << 10));
    using buf = typename decltype(pool)::template buffer<int>;
    unibuf::ring<buf, 3> r(dev, [&](std::size_t) { return pool.template acquire<int>(64); });
    for (std::uint64_t i = 0; i < 3; ++i) {
        auto w = r.claim();
        EXPECT_EQ(w.sequence(), i);
        EXPECT_EQ(w.index(), i);
        w->fill(static_cast<int>(i));
        w.publish();
    }
    EXPECT_FALSE(r.ready_to_claim());
    EXPECT_FALSE(r.try_claim().has_value());
    const auto blk = r.claim_blocker();
    EXPECT_EQ(blk.reason, unibuf::ring_wait::consumer);
    EXPECT_EQ(blk.sequence, 3u);
    EXPECT_EQ(blk.slot, 0u);
    expect_error([&] { (void)r.claim(std::chrono::milliseconds(20)); }, unibuf::errc::timeout,
                 {"claim of sequence 3", "all slots in flight"});
    EXPECT_FALSE(r.try_claim_for(std::chrono::milliseconds(1)).has_value());
    {
        auto rd = r.read();
        EXPECT_EQ(rd.sequence(), 0u);
        EXPECT_EQ(rd->to_vector(), std::vector<int>(64, 0));
        EXPECT_FALSE(r.ready_to_claim()) << "slot 0 is still being read";
    }  // released (host consumer, no fence)
    auto w = r.claim();
    EXPECT_EQ(w.sequence(), 3u);
    EXPECT_EQ(w.index(), 0u);
    EXPECT_EQ(r.read()->to_vector(), std::vector<int>(64, 1));
    EXPECT_EQ(r.read()->to_vector(), std::vector<int>(64, 2));
    EXPECT_EQ(r.read_blocker().reason, unibuf::ring_wait::producer);
    expect_error([&] { (void)r.read(std::chrono::milliseconds(5)); }, unibuf::errc::timeout, {"no producer published it"});
    w->fill(3);
    w.publish();
    EXPECT_TRUE(r.ready_to_read());
    EXPECT_EQ(r.read()->to_vector(), std::vector<int>(64, 3));
}

// A device consumer releases a slot with the fence of the device work that read it; the slot is
// never claimed before that fence completed, and the device read what the producer wrote.
TYPED_TEST_P(PoolRingBehaviour, DeviceConsumerFenceGuardsTheSlot) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::buffer_pool<B, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(256 << 10));
    using buf = typename decltype(pool)::template buffer<int>;
    unibuf::ring<buf, 2> r(dev, [&](std::size_t) { return pool.template acquire<int>(4096); });
    std::vector<buf> out;
    std::vector<typename B::fence> read_done;
    for (int s = 0; s < 8; ++s) {
        auto w = r.claim();
        if (s >= 2) {
            EXPECT_TRUE(dev.is_complete(read_done[static_cast<std::size_t>(s - 2)])) << "sequence " << s;
        }
        w->fill(s);
        w.publish();
        auto rd = r.read();
        out.push_back(pool.template acquire<int>(4096));
        read_done.push_back(out.back().copy_from(*rd));  // the device reads the slot
        rd.release(read_done.back());
    }
    for (int s = 0; s < 8; ++s) EXPECT_EQ(out[static_cast<std::size_t>(s)].to_vector(), std::vector<int>(4096, s));
}

// A claim dropped without publish is skipped by the consumers.
TYPED_TEST_P(PoolRingBehaviour, AbandonedClaimIsSkipped) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::ring<unibuf::basic_buffer<int, B, unibuf::access::read_write>, 2> r(dev, 8);  // owning slots
    {
        auto w = r.claim();
        w->fill(10);
        w.publish();
    }
    { auto w = r.claim(); }  // abandoned: sequence 1
    EXPECT_TRUE(r.ready_to_read());
    {
        auto rd = r.read();
        EXPECT_EQ(rd.sequence(), 0u);
        EXPECT_EQ(rd->to_vector(), std::vector<int>(8, 10));
    }
    EXPECT_FALSE(r.ready_to_read()) << "sequence 1 was abandoned and nothing follows it";
    {
        auto w = r.claim();
        EXPECT_EQ(w.sequence(), 2u);
        w->fill(12);
        w.publish();
    }
    auto rd = r.read();
    EXPECT_EQ(rd.sequence(), 2u);
    EXPECT_EQ(rd->to_vector(), std::vector<int>(8, 12));
    EXPECT_EQ(r.next_read_sequence(), 3u);
}

// Two producer threads and one consumer thread: every item arrives once, in sequence order, with
// the content its producer wrote (bounded waits, no sleeps). The slots are sync::none, coherent:
// the threads touch host memory only and the ring asks the backend only about complete fences, so
// backends whose device calls are bound to one thread (OpenGL) run this test too.
TYPED_TEST_P(PoolRingBehaviour, ThreadedProducersAndConsumerKeepOrder) {
    using B = typename TypeParam::backend;
    B& dev = TypeParam::get();
    unibuf::locked_buffer_pool<B, unibuf::access::read_write, unibuf::coherence::coherent, unibuf::sync::none> pool(
        dev, unibuf::pool_config::with_bytes(64 << 10));
    using buf = typename decltype(pool)::template buffer<std::uint64_t>;
    unibuf::ring<buf, 3> r(dev, [&](std::size_t) { return pool.template acquire<std::uint64_t>(32); });
    constexpr int per_producer = 150;
    auto produce = [&] {
        for (int i = 0; i < per_producer; ++i) {
            auto w = r.claim();
            w->fill(w.sequence());
            w.publish();
        }
    };
    std::vector<std::uint64_t> seen;
    std::thread consumer([&] {
        for (int i = 0; i < 2 * per_producer; ++i) {
            auto rd = r.read();
            const auto v = rd->to_vector();
            if (std::all_of(v.begin(), v.end(), [&](std::uint64_t x) { return x == rd.sequence(); }))
                seen.push_back(rd.sequence());
        }
    });
    std::thread p1(produce), p2(produce);
    p1.join();
    p2.join();
    consumer.join();
    std::vector<std::uint64_t> expected(2 * per_producer);
    std::iota(expected.begin(), expected.end(), 0u);
    EXPECT_EQ(seen, expected);
}

REGISTER_TYPED_TEST_SUITE_P(PoolRingBehaviour, SlicesAreAlignedDisjointAndInsideTheBlock, DataRoundTripsThroughEverySlice,
                            DeviceCopyBetweenSlicesUsesTheirOffsets, CapacityErrorNamesTheRequestAndWhatIsLeft,
                            FragmentationIsReportedAndCoalescesAway, NoBackendAllocationInSteadyState,
                            BatchesFitExactlyAsConfigured,
                            GrowthAndOutOfMemoryLeaveThePoolUsable, ImpossibleRequestsLeaveThePoolUnchanged,
                            CreationFailureIsClean,
                            ExplicitFlushSlicesNeverShareAnAtom, RingOrderAndAllSlotsInFlight,
                            DeviceConsumerFenceGuardsTheSlot, AbandonedClaimIsSkipped,
                            ThreadedProducersAndConsumerKeepOrder);

} // namespace unibuf_test
