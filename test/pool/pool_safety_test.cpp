// Memory safety of the pool and the ring (issue 9) on the host backend: sizes that would wrap are
// rejected before use and leave the pool unchanged; every member of an empty (moved-from) pool,
// batch and lease either works on the empty state or throws invalid_argument; ring waits obey the
// caller's timeout. Run under ASan/UBSan: a null dereference or an overflowing write fails here.
#include "../common/gate.hpp"
#include "counting_backend.hpp"
#include "pool_test_util.hpp"

#include <unibuf/transfer/pool.hpp>
#include <unibuf/transfer/ring.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::expect_error;
using unibuf_test::gate;
using pool_t = buffer_pool<host_backend, access::read_write>;

constexpr std::uint64_t u64_max = ~std::uint64_t{0};

// ---- overflow -------------------------------------------------------------------------------

// The case: SIZE_MAX/8 doubles from a 4 KiB pool. Before the fix, a batch handed out a
// buffer of ~2.3e18 elements over a 4 KiB region (its rounded size wrapped to 0).
TEST(PoolOverflow, BatchAcquireOfAWrappingSizeIsRejectedAndTheBatchStaysUsable) {
    host_backend dev;
    pool_t pool(dev, pool_config::for_batches(1, {buffer_shape::of<double>(512)}));
    auto batch = pool.begin_batch();
    const std::uint64_t left = batch.bytes_left();
    const pool_stats before = pool.stats();
    expect_error([&] { (void)batch.acquire<double>(SIZE_MAX / 8); }, errc::capacity_exceeded,
                 {"2305843009213693951 elements of 8 bytes", "the pool is unchanged"});
    expect_error([&] { (void)batch.acquire<double>(SIZE_MAX / 8 + 2); }, errc::capacity_exceeded,
                 {"2305843009213693953 elements of 8 bytes", "overflows 64 bits"});
    std::error_code ec;
    EXPECT_FALSE(batch.try_acquire<double>(SIZE_MAX / 4, ec).has_value());
    EXPECT_EQ(ec, errc::capacity_exceeded);
    // Within any block's size but above the region: the region's check, counted as a failure.
    expect_error([&] { (void)batch.acquire<double>(std::size_t{1} << 50); }, errc::capacity_exceeded,
                 {"1125899906842624 elements of 8 bytes", "in a batch", "4096 of the batch's 4096 bytes left"});
    EXPECT_EQ(batch.bytes_left(), left);
    const pool_stats after = pool.stats();
    EXPECT_EQ(after.acquires, before.acquires);
    EXPECT_EQ(after.live_buffers, before.live_buffers);
    EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
    EXPECT_EQ(after.failed_acquires, before.failed_acquires + 1);
    auto all = batch.acquire<double>(512);  // the whole region is still there
    all.fill(2.5);
    EXPECT_EQ(all.to_vector(), std::vector<double>(512, 2.5));
    EXPECT_EQ(batch.bytes_left(), 0u);
}

TEST(PoolOverflow, FreeStandingAcquireOfAWrappingSizeLeavesThePoolUnchanged) {
    host_backend dev;
    pool_t pool(dev, pool_config::with_bytes(4096));
    auto held = pool.acquire<int>(10);
    const pool_stats before = pool.stats();
    expect_error([&] { (void)pool.acquire<double>(SIZE_MAX / 8); }, errc::capacity_exceeded,
                 {"2305843009213693951 elements of 8 bytes", "largest block a pool can hold"});
    expect_error([&] { (void)pool.acquire<double>(SIZE_MAX / 8 + 2); }, errc::capacity_exceeded,
                 {"2305843009213693953 elements of 8 bytes", "overflows 64 bits"});
    std::error_code ec;
    EXPECT_FALSE(pool.try_acquire<std::uint32_t>(SIZE_MAX, ec).has_value());
    EXPECT_EQ(ec, errc::capacity_exceeded);
    EXPECT_FALSE(pool.can_fit<double>(SIZE_MAX / 8 + 2));
    EXPECT_FALSE(pool.can_fit_bytes(u64_max));
    const pool_stats after = pool.stats();
    EXPECT_EQ(after.blocks, before.blocks);
    EXPECT_EQ(after.capacity_bytes, before.capacity_bytes);
    EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
    EXPECT_EQ(after.live_buffers, before.live_buffers);
    EXPECT_EQ(after.acquires, before.acquires);
    EXPECT_EQ(after.failed_acquires, before.failed_acquires) << "rejected on its arguments: never searched";
    EXPECT_EQ(after.free_ranges, before.free_ranges);
    auto b = pool.acquire<double>(100);
    b.fill(1.0);
    EXPECT_EQ(b.to_vector(), std::vector<double>(100, 1.0));
}

// A batch size that would wrap adds no block either (the issue: with growth on, each impossible
// request added a useless block until max_blocks was used up).
TEST(PoolOverflow, ImpossibleBatchesAndRequestsAddNoBlock) {
    host_backend::options o;
    o.memory_limit = 1 << 20;  // max_allocation_size: 1 MiB
    host_backend inner(o);
    unibuf_test::counting_backend<host_backend> dev(inner);
    pool_config cfg = pool_config::with_bytes(4096);
    cfg.growth = pool_growth::add_blocks;
    cfg.max_blocks = 2;
    buffer_pool<unibuf_test::counting_backend<host_backend>, access::read_write> pool(dev, cfg);
    auto full = pool.acquire<std::byte>(4096);
    for (int i = 0; i < 4; ++i) {  // more impossible requests than max_blocks
        expect_error([&] { (void)pool.acquire<double>(SIZE_MAX / 8); }, errc::capacity_exceeded, {"elements of 8 bytes"});
        expect_error([&] { (void)pool.begin_batch(u64_max); }, errc::capacity_exceeded,
                     {"begin a batch of 18446744073709551615 bytes", "no block was added"});
        expect_error([&] { (void)pool.acquire<std::byte>((1 << 20) + 1); }, errc::capacity_exceeded,
                     {"1048577 elements of 1 byte", "larger than the largest block the pool may add (1048576 bytes"});
    }
    EXPECT_EQ(pool.stats().blocks, 1u);
    EXPECT_EQ(dev.allocations(), 1u);
    EXPECT_EQ(inner.bytes_in_use(), 4096u);
    auto grown = pool.acquire<std::byte>(8192);  // a valid request that needs growth still gets it
    EXPECT_EQ(pool.stats().blocks, 2u);
    EXPECT_EQ(pool.stats().capacity_bytes, 4096u + 8192u);
}

// The configuration's own products and sums are checked: an overflowing batch sizing names the
// buffer shape (element count, element size) and allocates nothing.
TEST(PoolOverflow, BatchSizingThatOverflowsNamesTheShapeAndAllocatesNothing) {
    host_backend dev;
    const pool_config wraps = pool_config::for_batches(2, {buffer_shape::of<float>(16), buffer_shape::of<double>(SIZE_MAX / 8 + 2)});
    expect_error([&] { pool_t p(dev, wraps); }, errc::capacity_exceeded,
                 {"batch_buffers[1] of 2305843009213693953 elements of 8 bytes", "overflows 64 bits",
                  "no memory was allocated"});
    std::error_code ec;
    EXPECT_FALSE(pool_t::try_create(dev, wraps, ec).has_value());
    EXPECT_EQ(ec, errc::capacity_exceeded);
    EXPECT_EQ(pool_t::batch_bytes_for(wraps, 64), u64_max);
    EXPECT_EQ(pool_t::block_bytes_for(wraps, 64), u64_max);
    // Each shape fits, their rounded sum does not.
    expect_error([&] { pool_t p(dev, pool_config::for_batches(1, {buffer_shape::of<std::byte>(u64_max - 8),
                                                                   buffer_shape::of<std::byte>(64)})); },
                 errc::capacity_exceeded, {"batch_buffers[0] of 18446744073709551607 elements of 1 byte "});
    expect_error([&] { pool_t p(dev, pool_config::for_batches(SIZE_MAX / 2, {buffer_shape::of<float>(1024)})); },
                 errc::capacity_exceeded, {"batch_count = 9223372036854775807 batches of 4096 bytes", "overflows"});
    expect_error([&] { pool_t p(dev, pool_config::with_bytes(u64_max - 2)); }, errc::capacity_exceeded,
                 {"block_bytes = 18446744073709551613", "overflows 64 bits"});
    pool_config odd = pool_config::for_batches(1, {buffer_shape{4, 4, 3}});
    expect_error([&] { pool_t p(dev, odd); }, errc::invalid_argument, {"batch_buffers[0].element_align = 3"});
    pool_config grow = pool_config::with_bytes(4096);
    grow.growth = pool_growth::add_blocks;
    grow.grow_block_bytes = u64_max;
    expect_error([&] { pool_t p(dev, grow); }, errc::invalid_argument, {"grow_block_bytes = 18446744073709551615"});
    EXPECT_EQ(dev.bytes_in_use(), 0u);
}

// Counts in the configuration that only size bookkeeping: huge values neither wrap nor fail the
// reservation (before: vector::reserve(SIZE_MAX) threw length_error out of the noexcept try_create).
TEST(PoolOverflow, HugeBookkeepingCountsAreCapped) {
    host_backend dev;
    pool_config cfg = pool_config::with_bytes(4096);
    cfg.max_blocks = SIZE_MAX;
    cfg.reserve_buffers = SIZE_MAX;
    cfg.growth = pool_growth::add_blocks;
    std::error_code ec;
    auto pool = pool_t::try_create(dev, cfg, ec);
    ASSERT_TRUE(pool.has_value()) << ec.message();
    auto a = pool->acquire<int>(1024);
    auto b = pool->acquire<int>(1024);  // grows
    EXPECT_EQ(pool->stats().blocks, 2u);
    pool_config batches = pool_config::for_batches(SIZE_MAX / 4096, {buffer_shape::of<std::byte>(1)});
    expect_error([&] { pool_t p(dev, batches); }, errc::invalid_argument, {"exceeds the largest block"});
}

// ---- block_allocator -----------------------------------------------------------------------

TEST(BlockAllocatorSafety, MovedFromAllocatorIsEmptyAndConsistent) {
    block_allocator a(4096, 64);
    auto r = a.allocate(100);
    ASSERT_TRUE(r);
    block_allocator b(std::move(a));
    EXPECT_EQ(a.capacity(), 0u);  // NOLINT(bugprone-use-after-move): the moved-from state is under test
    EXPECT_EQ(a.free_bytes(), 0u);
    EXPECT_EQ(a.free_blocks(), 0u);
    EXPECT_EQ(a.live_ranges(), 0u);
    EXPECT_EQ(a.largest_free(), 0u);
    EXPECT_EQ(a.fragmentation(), 0.0);
    EXPECT_EQ(a.allocate(64).status, block_status::too_large);
    EXPECT_FALSE(a.can_allocate(1));
    EXPECT_EQ(a.size_of(r.range.id), 0u) << "the range moved with the allocator";
    EXPECT_EQ(a.offset_of(r.range.id), 0u);
    EXPECT_EQ(b.size_of(r.range.id), 128u);
    int blocks = 0;
    a.for_each_block([&](std::uint64_t, std::uint64_t, bool) { ++blocks; });
    EXPECT_EQ(blocks, 0);
    EXPECT_EQ(a.check(), "");
    a.reset();
    EXPECT_EQ(a.check(), "");
    EXPECT_EQ(b.live_ranges(), 1u);
    EXPECT_EQ(b.check(), "");
    block_allocator c(64, 64);
    c = std::move(b);
    EXPECT_EQ(b.capacity(), 0u);  // NOLINT(bugprone-use-after-move)
    c.release(r.range.id);
    EXPECT_EQ(c.free_blocks(), 1u);
    EXPECT_EQ(c.largest_free(), 4096u);
    EXPECT_EQ(c.check(), "");
    a = std::move(c);  // the emptied one is usable again
    EXPECT_TRUE(a.allocate(4096));
    EXPECT_EQ(a.check(), "");
}

TEST(BlockAllocatorSafety, BadArgumentsThrowAndHugeReservationsAreCapped) {
    expect_error([] { block_allocator a(4096, 48); }, errc::invalid_argument, {"granularity 48"});
    expect_error([] { block_allocator a(block_allocator::max_capacity + 1, 64); }, errc::invalid_argument,
                 {"72057594037927937 bytes", "max_capacity"});
    block_allocator a(64 * 16, 64, SIZE_MAX);  // at most 16 ranges can ever be live
    for (int i = 0; i < 16; ++i) ASSERT_TRUE(a.allocate(64));
    EXPECT_EQ(a.allocate(64).status, block_status::insufficient_space);
    a.reserve(SIZE_MAX);
    EXPECT_EQ(a.check(), "");
}

// ---- moved-from pool and batch ---------------------------------------------------------------

TEST(PoolMovedFrom, EveryMemberOfAnEmptyPoolIsSafe) {
    host_backend dev;
    pool_t a(dev, pool_config::with_bytes(4096));
    auto kept = a.acquire<int>(8);
    pool_t b(std::move(a));
    pool_t& empty = a;  // NOLINT(bugprone-use-after-move): the moved-from state is under test
    EXPECT_FALSE(static_cast<bool>(empty));
    EXPECT_TRUE(static_cast<bool>(b));
    expect_error([&] { (void)empty.acquire<int>(4); }, errc::invalid_argument, {"acquire on an empty (moved-from) pool"});
    std::error_code ec;
    EXPECT_FALSE(empty.try_acquire<int>(4, ec).has_value());
    EXPECT_EQ(ec, errc::invalid_argument);
    EXPECT_FALSE(empty.can_fit<int>(1));
    EXPECT_FALSE(empty.can_fit_bytes(1));
    expect_error([&] { (void)empty.begin_batch(256); }, errc::invalid_argument, {"begin_batch on an empty (moved-from) pool"});
    EXPECT_FALSE(empty.try_begin_batch(ec, 256).has_value());
    EXPECT_EQ(ec, errc::invalid_argument);
    const pool_stats s = empty.stats();
    EXPECT_EQ(s.blocks, 0u);
    EXPECT_EQ(s.capacity_bytes, 0u);
    EXPECT_EQ(s.live_buffers, 0u);
    EXPECT_EQ(s.acquires, 0u);
    empty.reset_stats();
    EXPECT_EQ(empty.trim(), 0u);
    EXPECT_EQ(empty.granularity(), 0u);
    expect_error([&] { (void)empty.config(); }, errc::invalid_argument, {"config() on an empty (moved-from) pool"});
    expect_error([&] { (void)empty.report(); }, errc::invalid_argument, {"report() on an empty (moved-from) pool"});
    expect_error([&] { (void)empty.backend(); }, errc::invalid_argument, {"backend() on an empty (moved-from) pool"});
    // The pool that took over keeps working, and so does the buffer acquired before the move.
    EXPECT_EQ(b.stats().live_buffers, 1u);
    kept.fill(4);
    EXPECT_EQ(kept.to_vector(), std::vector<int>(8, 4));
    auto more = b.acquire<int>(8);
    EXPECT_EQ(b.stats().live_buffers, 2u);
    // Assigning an empty pool empties the target; assigning a pool refills an empty one.
    pool_t c(dev, pool_config::with_bytes(4096));
    c = std::move(empty);
    EXPECT_FALSE(static_cast<bool>(c));
    empty = std::move(b);
    EXPECT_TRUE(static_cast<bool>(empty));
    EXPECT_EQ(empty.stats().live_buffers, 2u);
    auto again = empty.acquire<int>(8);
    EXPECT_EQ(empty.stats().live_buffers, 3u);
}

TEST(PoolMovedFrom, EndedAndMovedFromBatchesAreEmpty) {
    host_backend dev;
    pool_t pool(dev, pool_config::for_batches(2, {buffer_shape::of<int>(64)}));
    std::vector<pool_t::batch> empties(1);  // default-constructed
    auto x = pool.begin_batch();
    pool_t::batch y(std::move(x));
    auto z = pool.begin_batch();
    z.end();
    empties.push_back(std::move(x));  // NOLINT(bugprone-use-after-move): the moved-from state is under test
    empties.push_back(std::move(z));
    for (pool_t::batch& e : empties) {
        EXPECT_FALSE(static_cast<bool>(e));
        expect_error([&] { (void)e.acquire<int>(4); }, errc::invalid_argument, {"ended or moved-from batch"});
        std::error_code ec;
        EXPECT_FALSE(e.try_acquire<int>(4, ec).has_value());
        EXPECT_EQ(ec, errc::invalid_argument);
        EXPECT_EQ(e.bytes_left(), 0u);
        EXPECT_EQ(e.capacity(), 0u);
        e.end();
    }
    EXPECT_EQ(y.capacity(), 256u);
    auto b = y.acquire<int>(64);
    EXPECT_EQ(y.bytes_left(), 0u);
    y = std::move(empties.front());  // ends y's batch; b keeps its region
    EXPECT_FALSE(static_cast<bool>(y));
    EXPECT_EQ(pool.stats().open_batches, 0u);
    EXPECT_EQ(pool.stats().batches, 2u);
    b.fill(3);
    EXPECT_EQ(b.to_vector(), std::vector<int>(64, 3));
}

// ---- ring -----------------------------------------------------------------------------------

using int_ring = ring<basic_buffer<int, host_backend, access::read_write, sync::fenced>, 2>;

TEST(RingSafety, EmptyLeasesThrowInvalidArgument) {
    host_backend dev;
    int_ring r(dev, 4);
    int_ring::write_slot never;
    EXPECT_FALSE(static_cast<bool>(never));
    expect_error([&] { (void)never.buffer(); }, errc::invalid_argument, {"buffer() of an empty write_slot"});
    expect_error([&] { (void)*never; }, errc::invalid_argument, {"empty write_slot"});
    expect_error([&] { (void)never->size(); }, errc::invalid_argument, {"empty write_slot"});
    expect_error([&] { (void)never.sequence(); }, errc::invalid_argument, {"sequence() of an empty write_slot"});
    expect_error([&] { (void)never.index(); }, errc::invalid_argument, {"index() of an empty write_slot"});
    expect_error([&] { never.publish(); }, errc::invalid_argument, {"publish() of an empty write_slot"});

    auto w = r.claim();
    auto w2 = std::move(w);
    EXPECT_FALSE(static_cast<bool>(w));  // NOLINT(bugprone-use-after-move): the moved-from state is under test
    expect_error([&] { w.publish(); }, errc::invalid_argument, {"publish() of an empty write_slot"});
    w2->fill(5);
    w2.publish();
    expect_error([&] { w2.publish(); }, errc::invalid_argument, {"publish() of an empty write_slot"});
    expect_error([&] { (void)w2.buffer(); }, errc::invalid_argument, {"empty write_slot"});
    w = std::move(w2);  // empty over empty: nothing happens

    int_ring::read_slot none;
    expect_error([&] { (void)none.buffer(); }, errc::invalid_argument, {"buffer() of an empty read_slot"});
    expect_error([&] { (void)none.sequence(); }, errc::invalid_argument, {"sequence() of an empty read_slot"});
    expect_error([&] { (void)none.index(); }, errc::invalid_argument, {"index() of an empty read_slot"});
    expect_error([&] { none.release(); }, errc::invalid_argument, {"release() of an empty read_slot"});
    auto rd = r.read();
    EXPECT_EQ(rd.sequence(), 0u);
    auto rd2 = std::move(rd);
    expect_error([&] { (void)rd->size(); }, errc::invalid_argument, {"empty read_slot"});  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(rd2->to_vector(), std::vector<int>(4, 5));
    rd2.release();
    expect_error([&] { rd2.release(); }, errc::invalid_argument, {"release() of an empty read_slot"});
    rd = std::move(rd2);
    // The ring is unchanged by all of that: the next items flow in order.
    auto w3 = r.claim();
    EXPECT_EQ(w3.sequence(), 1u);
    w3.publish();
    EXPECT_EQ(r.read().sequence(), 1u);
    EXPECT_EQ(r.next_claim_sequence(), 2u);
    EXPECT_EQ(r.next_read_sequence(), 2u);
}

TEST(RingSafety, SlotIndicesAreChecked) {
    host_backend dev;
    int_ring r(dev, 4);
    EXPECT_EQ(r.slot(1).size(), 4u);
    expect_error([&] { (void)r.slot(2); }, errc::out_of_range, {"slot(2) of a ring of 2 slots"});
    expect_error([&] { (void)r.slot_fence(SIZE_MAX); }, errc::out_of_range,
                 {"slot_fence(18446744073709551615) of a ring of 2 slots"});
}

// Slots from `make` must hold memory on the ring's backend: an empty buffer, or one of another
// backend object (whose fences the ring would ask the wrong backend about), is refused.
TEST(RingSafety, SlotsMustBeBuffersOnTheRingsBackend) {
    host_backend dev, other;
    using buf = basic_buffer<int, host_backend, access::read_write, sync::fenced>;
    auto with_empty_slot = [&] {
        ring<buf, 2> r(dev, [&](std::size_t i) {
            buf b(dev, 4);
            if (i == 1) buf taken(std::move(b));
            return b;
        });
    };
    expect_error(with_empty_slot, errc::invalid_argument, {"slot 1 of 2 is an empty (moved-from) buffer"});
    auto on_other_backend = [&] {
        ring<buf, 2> r(dev, [&](std::size_t i) { return buf(i == 0 ? dev : other, 4); });
    };
    expect_error(on_other_backend, errc::invalid_argument, {"slot 1 of 2 lives on another backend object"});
    EXPECT_EQ(dev.bytes_in_use(), 0u);
    EXPECT_EQ(other.bytes_in_use(), 0u);
}

// claim() and read() without an argument wait at most the ring's set_wait_timeout (for the other
// side or for the device), and the message names the wait and its duration.
TEST(RingSafety, WaitsObeyTheRingsWaitTimeout) {
    host_backend dev;
    ring<basic_buffer<int, host_backend, access::read_write, sync::fenced>, 1> r(dev, 4);
    EXPECT_EQ(r.wait_timeout(), default_wait_timeout);
    r.set_wait_timeout(std::chrono::milliseconds(30));
    EXPECT_EQ(r.wait_timeout(), std::chrono::milliseconds(30));
    using clock = std::chrono::steady_clock;
    const auto bounded = [](clock::time_point t0) { return clock::now() - t0 < std::chrono::seconds(5); };
    auto t0 = clock::now();
    expect_error([&] { (void)r.read(); }, errc::timeout, {"read of sequence 0", "timed out after 30 ms", "no producer"});
    EXPECT_TRUE(bounded(t0));
    r.claim().publish();
    t0 = clock::now();
    expect_error([&] { (void)r.claim(); }, errc::timeout, {"claim of sequence 1", "timed out after 30 ms", "all slots in flight"});
    EXPECT_TRUE(bounded(t0));
    gate g;
    const host_backend::fence reading = dev.submit([&g] { g.wait(); });
    r.read().release(reading);  // device work still reads slot 0
    t0 = clock::now();
    expect_error([&] { (void)r.claim(); }, errc::timeout,
                 {"claim of sequence 1", "timed out after 30 ms", "device work on the slot did not complete"});
    EXPECT_TRUE(bounded(t0));
    EXPECT_FALSE(dev.is_complete(reading));
    g.open();
    r.set_wait_timeout(default_wait_timeout);
    auto w = r.claim();
    EXPECT_TRUE(dev.is_complete(reading));
    EXPECT_EQ(w.sequence(), 1u);
}

} // namespace
