// Pool and ring tests that need the host backend's own controls: its non-coherent simulation,
// its memory limit, its kernels and device jobs that can be held back on purpose.
#include "../common/gate.hpp"
#include "../common/host_env.hpp"
#include "counting_backend.hpp"
#include "pool_test_util.hpp"

#include <unibuf/transfer/pool.hpp>
#include <unibuf/transfer/ring.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::expect_error;

static_assert(Backend<unibuf_test::counting_backend<host_backend>>);

using unibuf_test::gate;

host_kernel doubling() {
    return [](const host_invocation& in) {
        for (int& x : in.as<int>(0)) x *= 2;
    };
}

// One pool-backed buffer through a host write -> device kernel -> host read cycle under the
// policies `P...`, between two neighbours that must come out untouched.
template <class... P>
void round_trip_in_pool() {
    host_backend& dev = unibuf_test::host_env::get();
    buffer_pool<host_backend, P...> pool(dev, pool_config::with_bytes(64 << 10));
    using buf = typename decltype(pool)::template buffer<int>;
    constexpr sync_kind sync = buf::sync;
    constexpr bool viewable = buf::host_viewable;
    auto before = pool.template acquire<int>(5);
    auto b = pool.template acquire<int>(100);
    auto after = pool.template acquire<int>(7);
    std::vector<int> in(100);
    for (int i = 0; i < 100; ++i) in[static_cast<std::size_t>(i)] = i - 50;
    before.fill(-1);
    after.fill(-2);
    b.write(in);
    if constexpr (sync == sync_kind::none) {
        before.flush();  // sync::none: the caller flushes (no-op unless explicit_flush)
        after.flush();
        b.flush();
    }
    host_kernel k = doubling();
    const auto f = dispatch(dev, k, {1}, {}, bind(b));
    if constexpr (sync == sync_kind::none) {
        ASSERT_TRUE(dev.wait(f, default_wait_timeout));  // sync::none: the caller waits and invalidates
        b.invalidate();
        before.invalidate();
        after.invalidate();
    }
    std::vector<int> want(100);
    for (int i = 0; i < 100; ++i) want[static_cast<std::size_t>(i)] = 2 * (i - 50);
    std::vector<int> got(100);
    b.read(got);
    EXPECT_EQ(got, want);
    EXPECT_EQ(before.to_vector(), std::vector<int>(5, -1));
    EXPECT_EQ(after.to_vector(), std::vector<int>(7, -2));
    if constexpr (sync == sync_kind::lazy) {
        EXPECT_EQ(b.state(), buffer_state::synchronized);
    }
    if constexpr (viewable && sync != sync_kind::none) {
        EXPECT_EQ(b.const_view()[99], 98);
    }
    EXPECT_TRUE(dev.device_error().empty()) << dev.device_error();
}

TEST(HostPool, EveryPolicyRoundTripsThroughASlice) {
    round_trip_in_pool<access::read_write, coherence::coherent, placement::host, sync::none>();
    round_trip_in_pool<access::read_write, coherence::explicit_flush, placement::host, sync::none>();
    round_trip_in_pool<access::read_write, coherence::coherent, placement::automatic, sync::fenced>();
    round_trip_in_pool<access::read_write, coherence::explicit_flush, placement::device_mapped, sync::fenced>();
    round_trip_in_pool<access::read_write, coherence::coherent, placement::automatic, sync::lazy>();
    round_trip_in_pool<access::read_write, coherence::explicit_flush, placement::host, sync::lazy>();
    round_trip_in_pool<access::read_write, coherence::coherent, placement::device, sync::fenced>();  // staged
    round_trip_in_pool<access::read_write, coherence::coherent, placement::device, sync::lazy>();    // staged
}

TEST(HostPool, ForcedStagingSlicesRoundTrip) {
    host_backend::options o;
    o.force_staging = true;
    host_backend dev(o);
    buffer_pool<host_backend, access::read_write, sync::lazy> pool(dev, pool_config::with_bytes(16 << 10));
    auto a = pool.acquire<int>(10);
    auto b = pool.acquire<int>(10);
    a.fill(3);
    b.fill(4);
    host_kernel k = doubling();
    dispatch(dev, k, {1}, {}, bind(b));
    EXPECT_EQ(b.to_vector(), std::vector<int>(10, 8));
    EXPECT_EQ(a.to_vector(), std::vector<int>(10, 3));
    EXPECT_FALSE(pool.report().zero_copy);
}

// The non-coherent simulation flushes whole atoms (256 bytes here). Device writes to b, then a
// host flush of a: pool slices keep their atoms apart, so b keeps the device's data...
TEST(HostPool, NonCoherentSlicesKeepTheirAtomsApart) {
    host_backend::options o;
    o.non_coherent_atom = 256;
    host_backend dev(o);
    buffer_pool<host_backend, access::read_write, coherence::explicit_flush, sync::fenced> pool(
        dev, pool_config::with_bytes(16 << 10));
    EXPECT_EQ(pool.granularity(), 256u);
    EXPECT_FALSE(pool.report().host_coherent);
    auto a = pool.acquire<int>(3);
    auto b = pool.acquire<int>(3);
    EXPECT_EQ(b.byte_offset() - a.byte_offset(), 256u);
    a.write(std::vector<int>{0, 0, 0});
    b.write(std::vector<int>{1, 1, 1});
    host_kernel k = doubling();
    const auto f = dispatch(dev, k, {1}, {}, bind(b));  // device copy of b: 2, 2, 2
    ASSERT_TRUE(dev.wait(f, default_wait_timeout));
    a.write(std::vector<int>{9, 9, 9});  // flushes a's atom from the host copy
    EXPECT_EQ(b.to_vector(), (std::vector<int>{2, 2, 2}));
    EXPECT_EQ(a.to_vector(), (std::vector<int>{9, 9, 9}));
}

// ...and the same steps with two slices placed inside one atom by hand lose the device's data:
// the check above would fail if the pool let slices share an atom.
TEST(HostPool, NegativeControlSlicesSharingAnAtomLoseDeviceWrites) {
    host_backend::options o;
    o.non_coherent_atom = 256;
    host_backend dev(o);
    using buf = basic_buffer<int, host_backend, access::read_write, coherence::explicit_flush, sync::fenced>;
    host_backend::allocation mem = dev.allocate(buf::request_for(256));
    ASSERT_TRUE(mem.non_coherent());
    buf a(in_slice, dev, mem, 0, 3, slice_release{});
    buf b(in_slice, dev, mem, 64, 3, slice_release{});  // same 256-byte atom as a
    a.write(std::vector<int>{0, 0, 0});
    b.write(std::vector<int>{1, 1, 1});
    host_kernel k = doubling();
    const auto f = dispatch(dev, k, {1}, {}, bind(b));
    ASSERT_TRUE(dev.wait(f, default_wait_timeout));
    a.write(std::vector<int>{9, 9, 9});
    EXPECT_EQ(b.to_vector(), (std::vector<int>{1, 1, 1})) << "the flush of a overwrote b's atom with stale host bytes";
}

TEST(HostPool, StorageOffsetAlignmentOfTheDeviceIsHonoured) {
    host_backend::options o;
    o.min_storage_offset_alignment = 1024;
    host_backend dev(o);
    buffer_pool<host_backend, access::read_write> pool(dev, pool_config::with_bytes(64 << 10));
    EXPECT_EQ(pool.granularity(), 1024u);
    auto a = pool.acquire<char>(1);
    auto b = pool.acquire<char>(1);
    auto c = pool.acquire<double>(200);
    for (auto off : {a.byte_offset(), b.byte_offset(), c.byte_offset()}) EXPECT_EQ(off % 1024, 0u);
    EXPECT_EQ(pool.stats().bytes_in_use, 1024u + 1024u + 2048u);  // 1600 bytes of doubles: two granules
}

TEST(HostPool, BatchSizingIsMaxElementsTimesBatchCount) {
    host_backend& dev = unibuf_test::host_env::get();
    buffer_pool<host_backend, access::read_write> pool(
        dev, pool_config::for_batches(3, {buffer_shape::of<float>(1000), buffer_shape::of<int>(10)}));
    EXPECT_EQ(pool.granularity(), 64u);
    EXPECT_EQ(pool.stats().batch_bytes, 4032u + 64u);  // 4000 and 40 bytes, each rounded to 64
    EXPECT_EQ(pool.stats().capacity_bytes, 3u * (4032 + 64));
    std::vector<std::pair<buffer_pool<host_backend, access::read_write>::buffer<float>,
                          buffer_pool<host_backend, access::read_write>::buffer<int>>> held;
    for (int i = 0; i < 3; ++i) {
        auto batch = pool.begin_batch();
        held.emplace_back(batch.acquire<float>(1000), batch.acquire<int>(10));
        EXPECT_EQ(batch.bytes_left(), 0u);
    }
    EXPECT_FALSE(pool.can_fit<int>(1));
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.batches, 3u);
    EXPECT_EQ(s.peak_batch_bytes, 4032u + 64u);
    EXPECT_EQ(s.largest_buffer_elements, 1000u);
    EXPECT_EQ(s.largest_buffer_bytes, 4032u);
    EXPECT_EQ(s.elements, 3u * 1010u);
    EXPECT_EQ(s.peak_bytes_in_use, s.capacity_bytes);
    // An over-aligned element type adds its worst-case padding to the batch size.
    buffer_pool<host_backend, access::read_write> wide(
        dev, pool_config::for_batches(2, {buffer_shape{10, 256, 256}}));
    EXPECT_EQ(wide.stats().batch_bytes, 2560u + 192u);
}

// A pool destroyed while buffers live hands its memory to them; the last one frees it.
TEST(HostPool, BuffersOutliveTheirPool) {
    host_backend dev;
    const std::uint64_t base = dev.bytes_in_use();
    std::optional<buffer_pool<host_backend, access::read_write>::buffer<int>> b;
    {
        buffer_pool<host_backend, access::read_write> pool(dev, pool_config::with_bytes(64 << 10));
        b.emplace(pool.acquire<int>(100));
        auto gone = pool.acquire<int>(10);  // released before the pool: nothing special
    }
    EXPECT_EQ(dev.bytes_in_use(), base + (64u << 10)) << "the block stays while a buffer lives in it";
    b->fill(5);
    EXPECT_EQ(b->to_vector(), std::vector<int>(100, 5));
    b.reset();
    EXPECT_EQ(dev.bytes_in_use(), base) << "the last buffer frees the block";
    {
        buffer_pool<host_backend, access::read_write> pool(dev, pool_config::with_bytes(64 << 10));
        EXPECT_EQ(dev.bytes_in_use(), base + (64u << 10));
    }
    EXPECT_EQ(dev.bytes_in_use(), base) << "an idle pool frees its block at once";
}

// The host backend's own memory limit: creation and growth fail with out_of_memory, cleanly.
TEST(HostPool, RealBackendOutOfMemoryIsCleanAndThePoolStaysUsable) {
    host_backend::options o;
    o.memory_limit = 1 << 20;
    host_backend dev(o);
    std::error_code ec;
    auto too_big = buffer_pool<host_backend, access::read_write>::try_create(dev, pool_config::with_bytes(2 << 20), ec);
    EXPECT_FALSE(too_big.has_value());
    EXPECT_EQ(ec, errc::out_of_memory);
    expect_error([&] { (void)buffer_pool<host_backend, access::read_write>(dev, pool_config::with_bytes(2 << 20)); },
                 errc::out_of_memory, {"2097152 bytes", "host"});
    EXPECT_EQ(dev.bytes_in_use(), 0u);

    pool_config cfg = pool_config::with_bytes(512 << 10);
    cfg.growth = pool_growth::add_blocks;
    buffer_pool<host_backend, access::read_write> pool(dev, cfg);
    auto a = pool.acquire<std::byte>(500 << 10);
    expect_error([&] { (void)pool.acquire<std::byte>(600 << 10); }, errc::out_of_memory,
                 {"614400 bytes", "backend 'host' could not allocate a block of 614400 bytes", "still usable"});
    auto none = pool.try_acquire<std::byte>(600 << 10, ec);
    EXPECT_FALSE(none.has_value());
    EXPECT_EQ(ec, errc::out_of_memory);
    auto small = pool.acquire<std::byte>(8 << 10);
    small.fill(std::byte{1});
    EXPECT_EQ(small.to_vector(), std::vector<std::byte>(8 << 10, std::byte{1}));
    EXPECT_EQ(pool.stats().blocks, 1u);
    EXPECT_EQ(pool.stats().failed_acquires, 2u);
}

// A consumer's release fence of device work that still reads the slot keeps the slot from
// producers until the work completes; the device sees the producer's data unchanged meanwhile.
TEST(HostRing, NeverHandsOutASlotTheDeviceStillReads) {
    host_backend dev;
    buffer_pool<host_backend, access::read_write> pool(dev, pool_config::with_bytes(64 << 10));
    using buf = decltype(pool)::buffer<int>;
    ring<buf, 2> r(dev, [&](std::size_t) { return pool.acquire<int>(256); });
    for (int s = 0; s < 2; ++s) {
        auto w = r.claim();
        w->fill(s + 1);
        w.publish();
    }
    gate g;
    std::vector<int> device_saw;
    auto rd = r.read();
    const std::byte* dev_mem = rd->allocation().device_data() + rd->byte_offset();
    const host_backend::fence reading = dev.submit([&g, &device_saw, dev_mem] {
        if (!g.wait()) return;
        const int* p = reinterpret_cast<const int*>(dev_mem);
        device_saw.assign(p, p + 256);
    });
    rd.release(reading);
    { auto rd1 = r.read(); }  // slot 1 released by a host consumer: free at once
    const auto blk = r.claim_blocker();
    EXPECT_EQ(blk.reason, ring_wait::device);
    EXPECT_EQ(blk.slot, 0u);
    EXPECT_EQ(blk.fence, reading);
    EXPECT_EQ(r.slot_fence(0), reading);
    EXPECT_FALSE(r.try_claim().has_value());
    expect_error([&] { (void)r.claim(std::chrono::milliseconds(20)); }, errc::timeout,
                 {"claim of sequence 2", "device work on the slot did not complete"});
    g.open();
    auto w = r.claim();  // waits on the fence itself (bounded)
    EXPECT_TRUE(dev.is_complete(reading));
    EXPECT_EQ(w.sequence(), 2u);
    EXPECT_EQ(device_saw, std::vector<int>(256, 1));
    w->fill(3);
    w.publish();
}

// A device producer publishes with the fence of the work that writes the slot; readers wait for it.
TEST(HostRing, ReadersWaitForTheDeviceProducersFence) {
    host_backend dev;
    ring<basic_buffer<int, host_backend, access::read_write, sync::fenced>, 2> r(dev, 64);
    gate g;
    auto w = r.claim();
    std::byte* dst = w->allocation().device_data();
    const host_backend::fence writing = dev.submit([&g, dst] {
        if (!g.wait()) return;
        int* p = reinterpret_cast<int*>(dst);
        for (int i = 0; i < 64; ++i) p[i] = 77;
    });
    w.publish(writing);
    const auto blk = r.read_blocker();
    EXPECT_EQ(blk.reason, ring_wait::device);
    EXPECT_EQ(blk.fence, writing);
    EXPECT_FALSE(r.try_read().has_value());
    expect_error([&] { (void)r.read(std::chrono::milliseconds(20)); }, errc::timeout, {"device work on the slot"});
    g.open();
    auto rd = r.read();
    EXPECT_TRUE(dev.is_complete(writing));
    EXPECT_EQ(rd->to_vector(), std::vector<int>(64, 77));
}

// Without a release fence, a consumer that dispatched through bind() still protects the slot:
// the ring also checks the slot buffer's own last device use.
TEST(HostRing, SlotBuffersOwnLastUseIsHonoured) {
    host_backend dev;
    ring<basic_buffer<int, host_backend, access::read_write, sync::fenced>, 1> r(dev, 16);
    { auto w = r.claim(); w->fill(1); w.publish(); }
    gate g;
    host_kernel slow = [&g](const host_invocation& in) {
        if (!g.wait()) return;
        for (int& x : in.as<int>(0)) x += 1;
    };
    {
        auto rd = r.read();
        dispatch(dev, slow, {1}, {}, bind(*rd, usage::read_write));
        rd.release();  // no fence passed
    }
    EXPECT_EQ(r.claim_blocker().reason, ring_wait::device);
    EXPECT_FALSE(r.try_claim().has_value());
    g.open();
    auto w = r.claim();
    EXPECT_EQ(w->to_vector(), std::vector<int>(16, 2));
}

} // namespace
