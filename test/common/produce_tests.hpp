// Producer behaviour tests every backend that may be driven from several threads runs: one typed
// suite, instantiated per environment (host: test/produce; Vulkan: test/vulkan).
//
// An environment `Env` provides `using backend = ...; static backend& get();` and optionally
// `static void expect_clean();`. The data written by the producer's threads is checked after a
// device-side copy into a host-readable buffer (`copy_from`), so what is checked is what the
// device sees, on every path: direct stores into the mapping, the buffer's own staging
// (placement::device), and the producer's staging ring (forced on zero-copy memory, with tiny
// grains, chunks and a two-chunk ring so the ring wraps many times).
#pragma once

#include "expect_error.hpp"

#include <unibuf/buffer/basic_buffer.hpp>
#include <unibuf/transfer/pool.hpp>
#include <unibuf/transfer/producer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace unibuf_test {

struct rgb {
    float r, g, b;
    friend bool operator==(const rgb&, const rgb&) = default;
};

template <class T>
T value_at(std::size_t i, std::uint32_t seed) {
    if constexpr (std::is_same_v<T, rgb>) {
        return rgb{static_cast<float>(i), static_cast<float>(seed), static_cast<float>(i % 97)};
    } else {
        return static_cast<T>((i * 2654435761u + seed) & 0xffffffu);
    }
}

/// Small grains and chunks, a two-chunk ring: many copies and ring wraps on small buffers.
inline unibuf::produce_options tiny_options(std::optional<unibuf::produce_path> force) {
    unibuf::produce_options o;
    o.grain_bytes = 4096;
    o.chunk_bytes = 3 * 4096;
    o.ring_chunks = 2;
    o.force = force;
    return o;
}

/// Bytes of one chunk as the producer cuts them for elements of `elem` bytes.
template <class P>
std::size_t chunk_bytes(const P& prod, std::size_t elem) {
    const std::size_t grain = std::max<std::size_t>(1, prod.options().grain_bytes / elem);
    return grain * std::max<std::size_t>(1, prod.options().chunk_bytes / (grain * elem)) * elem;
}

template <class Env>
class ProduceBehaviour : public ::testing::Test {
protected:
    using B = typename Env::backend;
    B& dev() { return Env::get(); }
    void TearDown() override {
        if constexpr (requires { Env::expect_clean(); }) Env::expect_clean();
    }

    /// What the device sees of `buf`, through a device copy into a host buffer.
    template <class Buf>
    std::vector<typename Buf::value_type> device_contents(Buf& buf) {
        using T = typename Buf::value_type;
        unibuf::basic_buffer<T, B, unibuf::access::read_write, unibuf::placement::host, unibuf::sync::fenced> out(
            dev(), buf.size());
        out.copy_from(buf);
        return out.to_vector();
    }

    template <class Buf>
    static void expect_values(const std::vector<typename Buf::value_type>& got, std::uint32_t seed, const std::string& what) {
        std::size_t bad = 0, first_bad = 0;
        for (std::size_t i = 0; i < got.size(); ++i)
            if (!(got[i] == value_at<typename Buf::value_type>(i, seed)) && bad++ == 0) first_bad = i;
        EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements wrong, first at " << first_bad;
    }

    /// Fills a fresh `Buf` of `n` elements through `prod`, checks the result and the device data.
    template <class Buf>
    void fill_and_check(unibuf::producer<B>& prod, std::size_t n, std::uint32_t seed, const std::string& what) {
        using T = typename Buf::value_type;
        Buf buf(dev(), n);
        std::atomic<std::size_t> calls{0};
        const auto r = prod.fill(buf, [&](unibuf::write_only_view<T> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<T>(first + i, seed);
            calls.fetch_add(1, std::memory_order_relaxed);
        });
        EXPECT_EQ(r.bytes, n * sizeof(T)) << what;
        // A fill uses enough writers to give each min_grains_per_writer grains, at most the team.
        const std::size_t per = prod.options().min_grains_per_writer;
        const std::size_t want = std::max<std::size_t>(1, (r.grains + per - 1) / per);
        EXPECT_EQ(r.threads, std::min<std::size_t>(prod.threads(), want)) << what;
        EXPECT_EQ(r.grains, calls.load()) << what;
        EXPECT_FALSE(r.reason.empty()) << what;
        const std::size_t chunks = (n * sizeof(T) + chunk_bytes(prod, sizeof(T)) - 1) / chunk_bytes(prod, sizeof(T));
        if (r.path == unibuf::produce_path::staged_pipelined) {
            EXPECT_EQ(r.copies, chunks) << what << ": one copy per chunk";
            EXPECT_GE(r.submissions, 1u) << what;
            EXPECT_LE(r.submissions, r.copies) << what << ": complete chunks share a submission";
        } else {
            EXPECT_EQ(r.copies, 0u) << what;
            EXPECT_EQ(r.slot_waits, 0u) << what;
        }
        if (!buf.report().zero_copy) {
            EXPECT_EQ(r.path, unibuf::produce_path::staged_pipelined) << what << ": placement::device is always staged";
        }
        if (prod.options().force && buf.report().zero_copy) {
            EXPECT_EQ(r.path, *prod.options().force) << what;
        }
        if constexpr (Buf::sync == unibuf::sync_kind::lazy) {
            EXPECT_EQ(buf.state(), unibuf::buffer_state::synchronized) << what;
        }
        expect_values<Buf>(device_contents(buf), seed, what + " (" + std::string(to_string(r.path)) + ")");
    }
};

TYPED_TEST_SUITE_P(ProduceBehaviour);

TYPED_TEST_P(ProduceBehaviour, EveryPathDeliversEveryElementForEveryBufferKind) {
    using namespace unibuf;
    using B = typename TypeParam::backend;
    using upload = upload_buffer<float, B>;
    using host_rw = basic_buffer<std::uint32_t, B, access::read_write, placement::host, sync::fenced>;
    using device_lazy = device_buffer<float, B>;
    using shared_u32 = shared_buffer<std::uint32_t, B>;
    using flushed = basic_buffer<float, B, access::write_only, coherence::explicit_flush, placement::automatic, sync::fenced>;
    using colours = basic_buffer<rgb, B, access::write_only, coherence::write_combined, placement::automatic, sync::lazy>;
    std::uint32_t seed = 1;
    for (std::optional<produce_path> force : {std::optional<produce_path>{}, std::optional{produce_path::direct},
                                              std::optional{produce_path::staged_pipelined}}) {
        for (unsigned threads : {1u, 3u}) {
            producer<B> prod(this->dev(), threads, tiny_options(force));
            const std::string tag = std::string(force ? to_string(*force) : "backend's choice") + ", " +
                                    std::to_string(threads) + " thread(s), ";
            // 1 element, one grain exactly, and sizes that end mid-grain after several ring laps.
            for (std::size_t n : {std::size_t{1}, std::size_t{1024}, std::size_t{10 * 3 * 1024 + 17}}) {
                const std::string sz = std::to_string(n) + " elements";
                this->template fill_and_check<upload>(prod, n, ++seed, tag + "upload_buffer, " + sz);
                this->template fill_and_check<host_rw>(prod, n, ++seed, tag + "host read_write, " + sz);
                this->template fill_and_check<device_lazy>(prod, n, ++seed, tag + "device_buffer, " + sz);
                this->template fill_and_check<shared_u32>(prod, n, ++seed, tag + "shared_buffer, " + sz);
                this->template fill_and_check<flushed>(prod, n, ++seed, tag + "explicit_flush, " + sz);
                this->template fill_and_check<colours>(prod, n, ++seed, tag + "12-byte elements, " + sz);
            }
        }
    }
}

TYPED_TEST_P(ProduceBehaviour, ALaterFillReplacesTheDataAndReusesTheRing) {
    using namespace unibuf;
    using B = typename TypeParam::backend;
    producer<B> prod(this->dev(), 2, tiny_options(produce_path::staged_pipelined));
    upload_buffer<std::uint32_t, B> buf(this->dev(), 7 * 3 * 1024 + 5);
    for (std::uint32_t seed : {11u, 12u, 13u}) {
        const auto r = prod.fill(buf, [&](write_only_view<std::uint32_t> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<std::uint32_t>(first + i, seed);
        });
        EXPECT_EQ(r.path, produce_path::staged_pipelined);
        EXPECT_EQ(r.copies, 8u);  // ceil((7 * 3072 + 5) / 3072) chunks of 12 KiB
        if (buf.report().zero_copy) {
            EXPECT_EQ(prod.ring_bytes(), 2u * 3 * 4096);  // two chunks of 12 KiB
        } else {
            EXPECT_EQ(prod.ring_bytes(), 0u) << "a staged buffer fills through its own staging";
        }
        this->template expect_values<decltype(buf)>(this->device_contents(buf), seed, "fill " + std::to_string(seed));
    }
}

TYPED_TEST_P(ProduceBehaviour, APoolSliceIsFilledAndItsNeighboursAreNot) {
    using namespace unibuf;
    using B = typename TypeParam::backend;
    for (std::optional<produce_path> force : {std::optional{produce_path::direct}, std::optional{produce_path::staged_pipelined}}) {
        buffer_pool<B, access::read_write, placement::automatic, sync::fenced> pool(this->dev(),
                                                                                  pool_config::with_bytes(1 << 20));
        auto before = pool.template acquire<std::uint32_t>(1000);
        auto mid = pool.template acquire<std::uint32_t>(5 * 1024 + 3);
        auto after = pool.template acquire<std::uint32_t>(1000);
        before.fill(0xbbbbbbbbu);
        after.fill(0xaaaaaaaau);
        ASSERT_GT(mid.byte_offset(), 0u);
        producer<B> prod(this->dev(), 3, tiny_options(force));
        prod.fill(mid, [&](write_only_view<std::uint32_t> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<std::uint32_t>(first + i, 77);
        });
        this->template expect_values<decltype(mid)>(this->device_contents(mid), 77, "the slice");
        for (auto v : this->device_contents(before)) ASSERT_EQ(v, 0xbbbbbbbbu) << "the slice before was overwritten";
        for (auto v : this->device_contents(after)) ASSERT_EQ(v, 0xaaaaaaaau) << "the slice after was overwritten";
    }
}

TYPED_TEST_P(ProduceBehaviour, AWriterErrorStopsTheFillIsRethrownAndTheProducerStaysUsable) {
    using namespace unibuf;
    using B = typename TypeParam::backend;
    for (std::optional<produce_path> force : {std::optional{produce_path::direct}, std::optional{produce_path::staged_pipelined}}) {
        producer<B> prod(this->dev(), 3, tiny_options(force));
        upload_buffer<std::uint32_t, B> buf(this->dev(), 40 * 1024);
        std::atomic<std::size_t> calls{0};
        try {
            prod.fill(buf, [&](write_only_view<std::uint32_t> out, std::size_t first) {
                calls.fetch_add(1);
                if (first >= 12 * 1024) throw std::runtime_error("the source ran dry at element " + std::to_string(first));
                for (std::size_t i = 0; i < out.size(); ++i) out[i] = 1;
            });
            ADD_FAILURE() << "the writer's exception was not rethrown";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("ran dry"), std::string::npos) << e.what();
        }
        EXPECT_LT(calls.load(), 40u) << "grains were still handed out after the error";
        const auto r = prod.fill(buf, [&](write_only_view<std::uint32_t> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<std::uint32_t>(first + i, 5);
        });
        EXPECT_EQ(r.grains, 40u);
        this->template expect_values<decltype(buf)>(this->device_contents(buf), 5, "the fill after the failed one");
    }
}

TYPED_TEST_P(ProduceBehaviour, BadArgumentsAreRejectedWithTheirValues) {
    using namespace unibuf;
    using B = typename TypeParam::backend;
    produce_options o;
    o.chunk_bytes = 0;
    expect_error([&] { producer<B> prod(this->dev(), 2, o); }, errc::invalid_argument, {"chunk_bytes"});
    expect_error([&] { producer<B> prod(this->dev(), 0); }, errc::invalid_argument, {"0 threads"});
}

TYPED_TEST_P(ProduceBehaviour, AMovedFromProducerIsEmptyAndEveryMemberIsSafe) {
    using namespace unibuf;
    using B = typename TypeParam::backend;
    upload_buffer<std::uint32_t, B> buf(this->dev(), 4 * 3 * 1024 + 9);
    const auto job = [](std::uint32_t seed) {
        return [seed](write_only_view<std::uint32_t> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<std::uint32_t>(first + i, seed);
        };
    };
    producer<B> a(this->dev(), 2, tiny_options(produce_path::staged_pipelined));
    a.fill(buf, job(21));  // zero-copy memory: the ring now exists
    const std::uint64_t ring = a.ring_bytes();

    producer<B> b(std::move(a));
    // NOLINTBEGIN(bugprone-use-after-move): the moved-from state is what is tested
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(a.threads(), 0u);
    EXPECT_EQ(a.ring_bytes(), 0u);
    EXPECT_EQ(a.options().grain_bytes, 4096u) << "an empty producer keeps its options";
    expect_error([&] { a.fill(buf, job(22)); }, errc::invalid_argument, {"fill", "empty (moved-from) producer"});
    expect_error([&] { (void)a.plan(buf); }, errc::invalid_argument, {"plan", "empty (moved-from) producer"});
    // NOLINTEND(bugprone-use-after-move)
    EXPECT_FALSE(b.empty());
    EXPECT_EQ(b.threads(), 2u);
    EXPECT_EQ(b.ring_bytes(), ring) << "the ring moved with the threads";
    b.fill(buf, job(23));
    this->template expect_values<decltype(buf)>(this->device_contents(buf), 23, "a fill by the moved-to producer");

    // Move assignment: the target's own threads and ring go first; the source is left empty.
    producer<B> c(this->dev(), 1, tiny_options(produce_path::direct));
    c = std::move(b);
    EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(c.threads(), 2u);
    c.fill(buf, job(24));
    this->template expect_values<decltype(buf)>(this->device_contents(buf), 24, "a fill after move assignment");
    producer<B> d(std::move(b));  // moving an empty producer gives an empty producer
    EXPECT_TRUE(d.empty());
}

TYPED_TEST_P(ProduceBehaviour, AnEmptyBufferIsRejectedAndChangesNothing) {
    using namespace unibuf;
    using B = typename TypeParam::backend;
    producer<B> prod(this->dev(), 2, tiny_options(produce_path::staged_pipelined));
    upload_buffer<std::uint32_t, B> a(this->dev(), 1000);
    upload_buffer<std::uint32_t, B> b(std::move(a));
    const auto job = [](write_only_view<std::uint32_t> out, std::size_t first) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = value_at<std::uint32_t>(first + i, 31);
    };
    expect_error([&] { prod.fill(a, job); }, errc::invalid_argument, {"fill", "empty (moved-from) buffer"});
    expect_error([&] { (void)prod.plan(a); }, errc::invalid_argument, {"plan", "empty (moved-from) buffer"});
    EXPECT_EQ(prod.ring_bytes(), 0u) << "a rejected fill made no ring";
    const auto r = prod.fill(b, job);
    EXPECT_EQ(r.bytes, 4000u);
    this->template expect_values<decltype(b)>(this->device_contents(b), 31, "the fill after the rejected one");
}

TYPED_TEST_P(ProduceBehaviour, AStagingRingPastTwoToThe64IsRejectedBeforeAnythingChanges) {
    using namespace unibuf;
    using B = typename TypeParam::backend;
    constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
    produce_options huge = tiny_options(produce_path::staged_pipelined);
    huge.chunk_bytes = max / 2;
    huge.ring_chunks = 4;  // 4 chunks of 2^63 bytes
    expect_error([&] { producer<B> prod(this->dev(), 1, huge); }, errc::capacity_exceeded,
                 {"a staging ring of 4 chunks of 9223372036854775807 elements of 1 byte", "more than 2^64"});

    // One-byte chunks pass at construction; a chunk is one element, so 8-byte elements make the
    // ring 8 * (2^63 - 1) bytes: the fill is refused before it touches the buffer or the ring.
    produce_options o = tiny_options(produce_path::staged_pipelined);
    o.grain_bytes = 1;
    o.chunk_bytes = 1;
    o.ring_chunks = max / 2;
    producer<B> prod(this->dev(), 2, o);
    upload_buffer<std::uint64_t, B> up(this->dev(), 100);
    up.fill(7);  // fenced: written straight into the mapping
    std::atomic<std::size_t> calls{0};
    const auto job = [&](write_only_view<std::uint64_t> out, std::size_t first) {
        calls.fetch_add(1);
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = first + i;
    };
    if (up.report().zero_copy) {  // the staged path of zero-copy memory goes through the ring
        expect_error([&] { prod.fill(up, job); }, errc::capacity_exceeded,
                     {"a staging ring of 9223372036854775807 chunks of 1 element of 8 bytes"});
        EXPECT_EQ(calls.load(), 0u) << "no writer ran";
        EXPECT_EQ(prod.ring_bytes(), 0u);
        for (auto v : this->device_contents(up)) ASSERT_EQ(v, 7u) << "the buffer was changed";
    }
    // The producer is usable: memory with its own staging needs no ring.
    device_buffer<std::uint64_t, B> dev_buf(this->dev(), 100);
    const auto r = prod.fill(dev_buf, job);
    EXPECT_EQ(r.path, produce_path::staged_pipelined);
    EXPECT_EQ(r.grains, 100u);
    const auto got = this->device_contents(dev_buf);
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i) << "element " << i;
}

REGISTER_TYPED_TEST_SUITE_P(ProduceBehaviour, EveryPathDeliversEveryElementForEveryBufferKind,
                            ALaterFillReplacesTheDataAndReusesTheRing, APoolSliceIsFilledAndItsNeighboursAreNot,
                            AWriterErrorStopsTheFillIsRethrownAndTheProducerStaysUsable,
                            BadArgumentsAreRejectedWithTheirValues, AMovedFromProducerIsEmptyAndEveryMemberIsSafe,
                            AnEmptyBufferIsRejectedAndChangesNothing,
                            AStagingRingPastTwoToThe64IsRejectedBeforeAnythingChanges);

} // namespace unibuf_test
