// upload_stream on the host backend: block offsets and alignment, segment closing and wrap-around
// waits on the right fence (device work held at gates, no sleeps), oversize and empty requests,
// stale blocks, and the data the "device" sees (zero-copy, non-coherent, staged).
#include "../common/expect_error.hpp"
#include "../common/gate.hpp"

#include <unibuf/transfer/upload_stream.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

using namespace unibuf;
using namespace std::chrono_literals;

namespace {

using unibuf_test::expect_error;
using unibuf_test::gate;

using stream = upload_stream<host_backend>;

host_backend::options with_alignment(std::uint64_t storage, std::uint64_t atom = 1) {
    host_backend::options o;
    o.min_storage_offset_alignment = storage;
    o.non_coherent_atom = atom;
    return o;
}

/// A kernel that copies binding 0 (the block) into binding 1 (a result buffer).
host_kernel copy_kernel() {
    return [](const host_invocation& in) {
        auto src = in.as<const float>(0);
        auto dst = in.as<float>(1);
        std::copy(src.begin(), src.end(), dst.begin());
    };
}

} // namespace

TEST(UploadStream, BlocksArePackedAtTheStorageAlignment) {
    host_backend dev(with_alignment(256));
    stream s(dev, 4096, 3);
    EXPECT_EQ(s.segment_bytes(), 4096u);
    EXPECT_EQ(s.alignment(), 256u);
    EXPECT_FALSE(s.needs_flush());  // write-combined on the host backend: zero-copy, coherent

    auto a = s.push<char>(1);
    auto b = s.push<double>(3);
    auto c = s.push<float>(64);  // 256 bytes: fills exactly one alignment unit
    auto d = s.push<std::uint16_t>(1);
    EXPECT_EQ(a.byte_offset(), 0u);
    EXPECT_EQ(b.byte_offset(), 256u);
    EXPECT_EQ(c.byte_offset(), 512u);
    EXPECT_EQ(d.byte_offset(), 768u);
    EXPECT_EQ(c.size(), 64u);
    EXPECT_EQ(c.size_bytes(), 256u);
    EXPECT_EQ(s.segment_used(), 770u);
    for (const auto off : {a.byte_offset(), b.byte_offset(), c.byte_offset(), d.byte_offset()}) EXPECT_EQ(off % 256, 0u);
    EXPECT_EQ(&a.allocation(), &s.allocation());
    EXPECT_EQ(reinterpret_cast<std::byte*>(c.data()), s.allocation().host_data() + 512);
    EXPECT_EQ(s.stats().pushes, 4u);
    EXPECT_EQ(s.stats().bytes, 1u + 24u + 256u + 2u);
    EXPECT_EQ(s.stats().segments_closed, 0u);
}

TEST(UploadStream, OverAlignedElementsAndFlushAtomRaiseTheAlignment) {
    struct alignas(128) wide {
        float v[32];
    };
    host_backend dev(with_alignment(16, 64));
    stream s(dev, 1000, 2);
    EXPECT_EQ(s.alignment(), 64u);        // lcm(storage 16, atom 64)
    EXPECT_EQ(s.segment_bytes(), 1024u);  // rounded up to it
    auto a = s.push<char>(3);
    auto w = s.push<wide>(2);
    auto b = s.push<char>(1);
    EXPECT_EQ(a.byte_offset(), 0u);
    EXPECT_EQ(w.byte_offset(), 128u);
    EXPECT_EQ(b.byte_offset(), 384u);
    // An over-aligned type may need padding at a segment start: the largest request shrinks, and
    // the error says so.
    expect_error([&] { (void)s.push<wide>(8); }, errc::capacity_exceeded, {"960 usable at alignment 128"});
}

TEST(UploadStream, AFullSegmentClosesWithAFenceAndTheNextOneOpens) {
    host_backend dev(with_alignment(16));
    stream s(dev, 1024, 3);
    auto a = s.push<float>(200);  // 800 bytes
    EXPECT_EQ(a.segment(), 0u);
    auto b = s.push<float>(100);  // 400 bytes: no room left in segment 0
    EXPECT_EQ(b.segment(), 1u);
    EXPECT_EQ(b.byte_offset(), 1024u);
    EXPECT_EQ(s.current_segment(), 1u);
    EXPECT_EQ(s.stats().segments_closed, 1u);
    auto c = s.push<float>(56);  // 224 bytes: fits after b
    EXPECT_EQ(c.segment(), 1u);
    EXPECT_EQ(c.byte_offset(), 1024u + 400u);
    EXPECT_TRUE(a.valid());
    EXPECT_EQ(s.stats().blocked_waits, 0u);  // no device work: nothing to wait for
}

TEST(UploadStream, OversizeAndEmptyRequestsAreErrorsThatChangeNothing) {
    host_backend dev(with_alignment(16));
    stream s(dev, 1024, 2);
    (void)s.push<float>(10);
    const std::uint64_t used = s.segment_used();

    expect_error([&] { (void)s.push<float>(257); }, errc::capacity_exceeded,
                 {"257 elements of 4 bytes (1028 bytes)", "segment of 1024 bytes"});
    expect_error([&] { (void)s.push<float>(std::size_t{1} << 62); }, errc::capacity_exceeded, {});
    expect_error([&] { (void)s.push<float>(0); }, errc::invalid_argument, {});

    std::error_code ec;
    EXPECT_FALSE(s.try_push<float>(300, ec).has_value());
    EXPECT_EQ(ec, errc::capacity_exceeded);
    EXPECT_FALSE(s.try_push<float>(0, ec).has_value());
    EXPECT_EQ(ec, errc::invalid_argument);

    EXPECT_EQ(s.segment_used(), used);
    EXPECT_EQ(s.current_segment(), 0u);
    EXPECT_EQ(s.stats().pushes, 1u);
    auto full = s.push<float>(256);  // a whole segment is fine
    EXPECT_EQ(full.byte_offset(), 1024u);
    expect_error(
        [] {
            host_backend d;
            stream bad(d, 1024, 0);
        },
        errc::invalid_argument, {});
}

TEST(UploadStream, WrapAroundWaitsForThatSegmentsFenceOnly) {
    host_backend dev(with_alignment(16));
    stream s(dev, 1024, 2);
    gate g0, g1;

    (void)s.push<float>(256);                                   // segment 0 full
    const auto held0 = dev.submit([&] { g0.wait(); });    // device work the closing fence covers
    (void)s.push<float>(256);                                   // closes segment 0 -> segment 1
    EXPECT_EQ(s.segment_fence(0), held0);                       // the fence after everything submitted
    const auto held1 = dev.submit([&] { g1.wait(); });
    EXPECT_FALSE(dev.is_complete(held0));

    // Segment 1 is full; the ring comes back to segment 0, whose fence is pending: no push without waiting.
    std::error_code ec;
    EXPECT_FALSE(s.try_push<float>(1, ec).has_value());
    EXPECT_EQ(ec, errc::timeout);
    EXPECT_EQ(s.stats().blocked_waits, 0u);  // try_push never waits
    EXPECT_EQ(s.segment_fence(1), held1);    // segment 1 was closed on the way, with the newest fence

    // A bounded wait that runs out blocks, is counted, and names the segment.
    EXPECT_FALSE(s.try_push_for<float>(1, 20ms, ec).has_value());
    EXPECT_EQ(ec, errc::timeout);
    EXPECT_EQ(s.stats().blocked_waits, 1u);
    s.set_wait_timeout(20ms);
    expect_error([&] { (void)s.push<float>(1); }, errc::timeout,
                 {"segment 0 of 2 (1024 bytes) is still read by device work after 20 ms"});

    // Segment 0's work completes while segment 1's is still held: segment 0 opens without waiting
    // on segment 1's fence.
    g0.open();
    ASSERT_TRUE(dev.wait(held0, 10s));
    EXPECT_FALSE(dev.is_complete(held1));
    auto again = s.try_push<float>(256, ec);
    ASSERT_TRUE(again.has_value()) << ec.message();
    EXPECT_EQ(again->segment(), 0u);
    EXPECT_EQ(again->byte_offset(), 0u);
    EXPECT_FALSE(dev.is_complete(held1));

    // Next wrap: segment 1 is still held. A blocking push returns only once its fence completed.
    s.set_wait_timeout(10s);
    std::thread opener([&] { g1.open(); });
    auto after = s.push<float>(1);
    EXPECT_TRUE(dev.is_complete(held1));
    EXPECT_EQ(after.segment(), 1u);
    opener.join();
}

TEST(UploadStream, DeviceUseAfterTheSegmentClosedMovesItsFence) {
    host_backend dev(with_alignment(16));
    stream s(dev, 1024, 2);
    auto a = s.push<float>(256);
    a.view().assign(std::vector<float>(256, 1.0f));
    (void)s.push<float>(256);  // closes segment 0 before a is consumed
    EXPECT_TRUE(dev.is_complete(s.segment_fence(0)));

    gate g;
    dev.submit([&] { g.wait(); });
    device_buffer<float, host_backend> out(dev, 256);
    host_kernel k = copy_kernel();
    const auto used = dispatch(dev, k, {1}, {}, bind(a, usage::read), bind(out, usage::write));
    EXPECT_EQ(s.segment_fence(0), used);  // reported through after_device_use

    std::error_code ec;
    EXPECT_FALSE(s.try_push<float>(1, ec).has_value());  // segment 0 is read by the held dispatch
    EXPECT_EQ(ec, errc::timeout);
    g.open();
    auto b = s.push<float>(1);
    EXPECT_EQ(b.segment(), 0u);
    EXPECT_TRUE(dev.is_complete(used));
    EXPECT_EQ(out.to_vector(), std::vector<float>(256, 1.0f));
}

TEST(UploadStream, ABlockUsedAfterItsSegmentCameRoundIsRejected) {
    host_backend dev(with_alignment(16));
    stream s(dev, 1024, 2);
    auto old = s.push<float>(256);
    (void)s.push<float>(256);
    EXPECT_TRUE(old.valid());
    auto reused = s.push<float>(10);  // back in segment 0
    EXPECT_EQ(reused.segment(), 0u);
    EXPECT_FALSE(old.valid());
    EXPECT_TRUE(reused.valid());
    device_buffer<float, host_backend> out(dev, 256);
    host_kernel k = copy_kernel();
    expect_error([&] { dispatch(dev, k, {1}, {}, bind(old, usage::read), bind(out)); }, errc::invalid_argument,
                 {"after the upload_stream reopened that segment"});
    expect_error([&] { old.flush(); }, errc::invalid_argument, {});
    expect_error([&] { reused.assign(std::vector<float>(11)); }, errc::out_of_range, {});
}

// Many blocks through a small ring, each read by a "device" kernel into its own result slot;
// every element checked. Run on zero-copy memory, simulated non-coherent memory (explicit_flush:
// only the flush in before_device_use makes the data arrive) and staged memory.
template <class Stream>
void stream_many_blocks(host_backend& dev, bool expect_flush) {
    Stream s(dev, 2048, 3);
    EXPECT_EQ(s.needs_flush(), expect_flush);
    constexpr std::size_t blocks = 100;
    std::vector<std::size_t> sizes(blocks);
    for (std::size_t i = 0; i < blocks; ++i) sizes[i] = 1 + (i * 37) % 300;
    const std::size_t total = std::accumulate(sizes.begin(), sizes.end(), std::size_t{0});
    std::vector<float> expected(total);
    std::vector<float> seen(total, -1.0f);  // written by the device kernels only
    std::size_t at = 0;
    for (std::size_t i = 0; i < blocks; ++i) {
        auto blk = s.template push<float>(sizes[i]);
        auto v = blk.view();
        for (std::size_t j = 0; j < sizes[i]; ++j) {
            const float x = static_cast<float>(i * 1000 + j);
            v[j] = x;
            expected[at + j] = x;
        }
        float* dst = seen.data() + at;
        host_kernel k = [dst](const host_invocation& in) {
            auto src = in.as<const float>(0);
            std::copy(src.begin(), src.end(), dst);
        };
        dispatch(dev, k, {1}, {}, bind(blk, usage::read));
        at += sizes[i];
    }
    s.wait_idle();
    EXPECT_EQ(dev.device_error(), "");
    for (std::size_t i = 0; i < total; ++i) ASSERT_EQ(seen[i], expected[i]) << "element " << i;
    EXPECT_EQ(s.stats().pushes, blocks);
    EXPECT_GE(s.stats().segments_closed, 10u);  // it wrapped several times
}

TEST(UploadStream, DataArrivesZeroCopy) {
    host_backend dev;
    stream_many_blocks<upload_stream<host_backend>>(dev, false);
}

TEST(UploadStream, DataArrivesOnNonCoherentMemoryThroughTheFlush) {
    host_backend dev;  // simulate_non_coherent: explicit_flush memory has a separate host copy
    stream_many_blocks<upload_stream<host_backend, coherence::explicit_flush>>(dev, true);
    // Without the flush the device copy stays untouched.
    upload_stream<host_backend, coherence::explicit_flush> s(dev, 1024, 2);
    auto blk = s.push<float>(16);
    blk.assign(std::vector<float>(16, 3.0f));
    const float* device = reinterpret_cast<const float*>(s.allocation().device_data() + blk.byte_offset());
    EXPECT_EQ(device[0], 0.0f);
    blk.flush();
    EXPECT_EQ(device[0], 3.0f);
    EXPECT_EQ(device[15], 3.0f);
}

TEST(UploadStream, DataArrivesOnStagedMemory) {
    host_backend::options o;
    o.force_staging = true;
    host_backend dev(o);
    stream_many_blocks<upload_stream<host_backend>>(dev, true);
}

TEST(UploadStream, UploadCopiesAndDestructionWaitsForTheDevice) {
    host_backend dev;
    std::vector<float> seen(64, 0.0f);
    gate g;
    host_backend::fence f;
    std::thread opener;
    {
        stream s(dev, 1024, 2);
        std::vector<float> src(64);
        std::iota(src.begin(), src.end(), 1.0f);
        auto blk = s.upload(std::span<const float>(src));
        EXPECT_EQ(blk.size(), 64u);
        host_kernel k = [&seen, &g](const host_invocation& in) {
            g.wait();
            auto v = in.as<const float>(0);
            std::copy(v.begin(), v.end(), seen.begin());
        };
        f = dispatch(dev, k, {1}, {}, bind(blk, usage::read));
        EXPECT_FALSE(dev.is_complete(f));
        opener = std::thread([&g] { g.open(); });
    }  // the destructor waits for the kernel before the ring's memory goes
    EXPECT_TRUE(dev.is_complete(f));
    EXPECT_EQ(seen[0], 1.0f);
    EXPECT_EQ(seen[63], 64.0f);
    opener.join();
}

TEST(UploadStream, AByteSizePastTwoToThe64IsCapacityExceededAndChangesNothing) {
    host_backend dev(with_alignment(16));
    stream s(dev, 1024, 2);
    auto a = s.push<float>(10);
    const std::uint64_t used = s.segment_used();
    const auto stats = s.stats();
    constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
    // max / 8 + 2 doubles: the byte count wraps to 8 in 64 bits, which would fit the segment.
    expect_error([&] { (void)s.push<double>(max / 8 + 2); }, errc::capacity_exceeded,
                 {"2305843009213693953 elements of 8 bytes (more than 2^64 bytes)", "segment of 1024 bytes"});
    expect_error([&] { (void)s.push<std::uint16_t>(max); }, errc::capacity_exceeded,
                 {"18446744073709551615 elements of 2 bytes"});
    std::error_code ec;
    EXPECT_FALSE(s.try_push<double>(max / 8 + 2, ec).has_value());
    EXPECT_EQ(ec, errc::capacity_exceeded);
    EXPECT_EQ(s.segment_used(), used);
    EXPECT_EQ(s.current_segment(), 0u);
    EXPECT_EQ(s.stats().pushes, stats.pushes);
    EXPECT_EQ(s.stats().bytes, stats.bytes);
    EXPECT_EQ(s.stats().segments_closed, stats.segments_closed);
    // Still usable: the next block follows the first one.
    auto b = s.push<double>(4);
    EXPECT_EQ(b.byte_offset(), 48u);  // 40 bytes of a, aligned up to 16
    b.assign(std::vector<double>{1, 2, 3, 4});
    EXPECT_TRUE(a.valid());
}

TEST(UploadStream, ConstructorSizesThatPassTwoToThe64AreRejectedNamingThem) {
    host_backend dev(with_alignment(16));
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    // One segment rounded up to the alignment would wrap.
    expect_error([&] { stream s(dev, max - 5, 1); }, errc::capacity_exceeded,
                 {"1 segments of 18446744073709551610 bytes", "alignment 16"});
    // Segments together would wrap.
    expect_error([&] { stream s(dev, std::uint64_t{1} << 40, std::size_t{1} << 30); }, errc::capacity_exceeded,
                 {"1073741824 segments of 1099511627776 bytes"});
    // Alignments without a common multiple below 2^64.
    host_backend odd(with_alignment(std::uint64_t{1} << 63, 3));
    expect_error([&] { stream s(odd, 1024, 2); }, errc::invalid_argument, {"no common multiple below 2^64"});
    EXPECT_EQ(dev.bytes_in_use(), 0u) << "nothing was allocated";
    stream fine(dev, 1024, 2);
    EXPECT_EQ(fine.segment_bytes(), 1024u);
}

TEST(UploadStream, AnEmptyBlockHoldsNothingAndRejectsEveryUseOfMemory) {
    host_backend dev(with_alignment(16));
    stream s(dev, 1024, 2);
    stream::block<float> empty;
    EXPECT_TRUE(empty.empty());
    EXPECT_FALSE(empty.valid());
    EXPECT_EQ(empty.size(), 0u);
    EXPECT_EQ(empty.size_bytes(), 0u);
    EXPECT_EQ(empty.byte_offset(), 0u);
    EXPECT_EQ(empty.segment(), 0u);
    EXPECT_EQ(empty.data(), nullptr);
    EXPECT_EQ(empty.view().size(), 0u);
    expect_error([&] { (void)empty.allocation(); }, errc::invalid_argument, {"allocation()", "empty block"});
    expect_error([&] { (void)empty.range(); }, errc::invalid_argument, {"empty block"});
    expect_error([&] { empty.assign(std::vector<float>{}); }, errc::invalid_argument, {"assign", "empty block"});
    expect_error([&] { empty.flush(); }, errc::invalid_argument, {"flush", "empty block"});
    empty.after_device_use(host_backend::fence{}, usage::read);  // nothing to record
    expect_error([&] { empty.before_device_use(usage::read); }, errc::invalid_argument,
                 {"device use", "empty block"});
    // Bound to a dispatch: rejected before the backend sees a binding.
    device_buffer<float, host_backend> out(dev, 4);
    host_kernel k = copy_kernel();
    expect_error([&] { dispatch(dev, k, {1}, {}, bind(empty, usage::read), bind(out)); }, errc::invalid_argument,
                 {"empty"});
    EXPECT_EQ(s.stats().pushes, 0u);
    // A segment index past the ring is an error, not a read past the segment table.
    expect_error([&] { (void)s.segment_fence(2); }, errc::out_of_range, {"segment_fence(2) of a ring of 2 segments"});
    EXPECT_TRUE(dev.wait_idle());
    EXPECT_EQ(dev.device_error(), "");
}

TEST(UploadStream, WaitIdleObeysTheStreamsTimeoutAndNamesIt) {
    host_backend dev(with_alignment(16));
    stream s(dev, 1024, 2);
    auto blk = s.push<float>(8);
    gate g;
    host_kernel hold = [&g](const host_invocation&) { g.wait(); };
    dispatch(dev, hold, {1}, {}, bind(blk, usage::read));
    s.set_wait_timeout(30ms);
    const auto t0 = std::chrono::steady_clock::now();
    expect_error([&] { s.wait_idle(); }, errc::timeout, {"segment 0 of 2", "after 30 ms"});
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    g.open();
    s.set_wait_timeout(std::chrono::nanoseconds::max());  // as long as it takes: no clock overflow
    s.wait_idle();
    EXPECT_TRUE(dev.is_complete(s.segment_fence(0)));
}

static_assert(!std::is_copy_constructible_v<stream> && !std::is_move_constructible_v<stream> &&
                  !std::is_move_assignable_v<stream>,
              "blocks point to their stream: a stream is never moved, so it is never empty");
static_assert(Buffer<upload_stream<host_backend>::block<float>>);
static_assert(DeviceBindable<upload_stream<host_backend>::block<float>>);
