// The pipeline suite, written once and run on every backend. An environment `Env` provides:
//   using backend = ...;                      the backend type
//   backend& dev();  auto& notifier();  auto& stage();  unibuf::thread_pool& pool();
//   template <class In, class Out> std::function<fence(In&, Out&, uint64_t)> gpu();   out = 2 * in
//   template <class T> T run(unibuf::task<T>);  runs a task to its end (GL: on the context loop)
//   void expect_clean();                      no validation message / GL error
//
// Every frame carries its index (element 0) and a checksum (last element) written by the writer;
// the consumer checks the index, the order, every element against the CPU reference (2 * input)
// and the checksum, so a frame lost, duplicated, reordered or torn fails the suite.
#pragma once

#include <unibuf/async/pipeline.hpp>

#include "../common/expect_error.hpp"
#include "../common/gate.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <thread>
#include <type_traits>
#include <vector>

namespace unibuf_test {

/// Element i of input frame k (small integers: every sum below is exact in float).
inline float frame_value(std::uint64_t k, std::size_t i) { return static_cast<float>((k * 7 + i * 3) % 13); }

/// Writes frame k: [k, values..., checksum of the values].
inline void write_frame(unibuf::write_only_view<float> v, std::uint64_t k) {
    float sum = 0;
    for (std::size_t i = 1; i + 1 < v.size(); ++i) {
        const float x = frame_value(k, i);
        v[i] = x;
        sum += x;
    }
    v[0] = static_cast<float>(k);
    v[v.size() - 1] = sum;
}

/// Checks output frame k (2 * input) and returns an empty string, or what is wrong.
inline std::string check_frame(std::span<const float> out, std::uint64_t k) {
    if (out.size() < 3) return "frame too small";
    if (out[0] != 2.0f * static_cast<float>(k))
        return "frame " + std::to_string(k) + " carries index " + std::to_string(out[0] / 2);
    float sum = 0;
    for (std::size_t i = 1; i + 1 < out.size(); ++i) {
        if (out[i] != 2.0f * frame_value(k, i))
            return "frame " + std::to_string(k) + " element " + std::to_string(i) + " is " + std::to_string(out[i]) +
                   ", the CPU reference " + std::to_string(2.0f * frame_value(k, i));
        sum += out[i];
    }
    if (sum != out[out.size() - 1]) return "frame " + std::to_string(k) + ": checksum mismatch";
    return {};
}

/// Records what the consumer saw: indices in arrival order and the first error.
struct frame_log {
    std::mutex m;
    std::vector<std::uint64_t> seen;
    std::string error;
    void add(std::span<const float> out, std::uint64_t k) {
        const std::string e = check_frame(out, k);
        std::lock_guard lk(m);
        if (error.empty() && !e.empty()) error = e;
        seen.push_back(k);
    }
    /// Frames strictly increasing, none twice.
    bool in_order() {
        std::lock_guard lk(m);
        for (std::size_t i = 1; i < seen.size(); ++i)
            if (seen[i] <= seen[i - 1]) return false;
        return true;
    }
};

/// Waits (bounded: 10 s) until `pred` holds; false when it never did.
template <class P>
bool eventually(P pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::yield();
    }
    return true;
}

} // namespace unibuf_test

namespace {
using namespace unibuf;
using namespace unibuf_test;

template <class Env>
class PipelineBehaviour : public ::testing::Test {
protected:
    using B = typename Env::backend;
    template <std::size_t S>
    using pipe = pipeline<B, S>;

    Env env;
    static constexpr std::size_t n = 1024;

    void TearDown() override { env.expect_clean(); }

    template <std::size_t S>
    pipeline_config config(std::size_t writers) {
        pipeline_config c;
        c.input_elements = n;
        c.output_elements = n;
        c.writers = writers;
        return c;
    }

    template <std::size_t S>
    typename pipe<S>::gpu_fn gpu() {
        return env.template gpu<typename pipe<S>::input_ring::buffer_type, typename pipe<S>::output_ring::buffer_type>();
    }

    // Runs `frames` frames with `writers` writers through S slots; every frame checked.
    template <std::size_t S>
    void run_all(std::size_t writers, std::uint64_t frames) {
        frame_log log;
        pipe<S> p(env.dev(), env.notifier(), env.stage(), env.pool(), config<S>(writers), write_frame, gpu<S>(),
                  [&](std::span<const float> out, std::uint64_t k) { log.add(out, k); });
        const pipeline_stats s = env.run(p.run(frames));
        EXPECT_EQ(log.error, "");
        ASSERT_EQ(log.seen.size(), frames) << "slots " << S << ", writers " << writers;
        for (std::uint64_t k = 0; k < frames; ++k) ASSERT_EQ(log.seen[k], k) << "slots " << S;
        EXPECT_EQ(s.frames_in, frames);
        EXPECT_EQ(s.frames_gpu, frames);
        EXPECT_EQ(s.frames_out, frames);
        EXPECT_EQ(s.frames_dropped, 0u);
        EXPECT_EQ(s.bytes_in, frames * n * sizeof(float));
        EXPECT_GT(s.fps, 0.0);
        EXPECT_GT(s.overlap_efficiency, 0.0);
    }
};

TYPED_TEST_SUITE_P(PipelineBehaviour);

TYPED_TEST_P(PipelineBehaviour, OneWriterEveryFrameInOrder) { this->template run_all<3>(1, 120); }

TYPED_TEST_P(PipelineBehaviour, ManyWritersSlotsTwoToEight) {
    this->template run_all<2>(4, 60);
    this->template run_all<4>(3, 60);
    this->template run_all<8>(4, 60);
}

TYPED_TEST_P(PipelineBehaviour, PullModeNext) {
    using P = typename TestFixture::template pipe<3>;
    auto& env = this->env;
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), this->template config<3>(2), write_frame,
        this->template gpu<3>());
    frame_log log;
    auto consumer = [&]() -> task<int> {
        int n = 0;
        for (;;) {
            auto f = co_await p.next();
            if (!f) break;
            auto g = std::move(*f);  // a moved-from frame is empty
            if (!f->data().empty() || f->index() != 0) log.error = "a moved-from frame kept its data";
            log.add(g.data(), g.index());
            g.release();
            if (!g.data().empty()) log.error = "a released frame kept its data";
            ++n;
        }
        co_return n;
    };
    auto [s, got] = env.run(when_all(p.run(50), consumer()));
    EXPECT_EQ(got, 50);
    EXPECT_EQ(s.frames_gpu, 50u);
    // In pull mode run() ends when the GPU stage handed every frame on; the consumer may still be
    // taking the last ones then: the final count is read once it finished.
    EXPECT_EQ(p.statistics().frames_out, 50u);
    EXPECT_EQ(log.error, "");
    EXPECT_TRUE(log.in_order());
}

// A slow consumer holds frame 0: the writers fill what the slots allow and then wait (suspended
// on the ring, not spinning); nothing is dropped; once the consumer goes on, everything arrives.
TYPED_TEST_P(PipelineBehaviour, SlowConsumerBackPressure) {
    using P = typename TestFixture::template pipe<2>;
    auto& env = this->env;
    gate go;
    frame_log log;
    P* pp = nullptr;
    std::atomic<std::uint64_t> in_while_held{0};
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), this->template config<2>(3), write_frame,
        this->template gpu<2>(), [&](std::span<const float> out, std::uint64_t k) {
            if (k == 0) {  // (braced: gtest macros)
                // Bounded: every writer ends up waiting for an input slot.
                EXPECT_TRUE(eventually([&] { return pp->inputs().waiters() == 3; }));
                in_while_held = pp->statistics().frames_in;
                EXPECT_TRUE(go.wait());
            }
            log.add(out, k);
        });
    pp = &p;
    std::thread opener([&] {
        EXPECT_TRUE(eventually([&] { return in_while_held.load() != 0; }));
        go.open();
    });
    const auto s = env.run(p.run(40));
    opener.join();
    // Held at frame 0: at most 2 outputs (one held) and 2 inputs, plus one in the stage's hands.
    EXPECT_LE(in_while_held.load(), 2u + 2u + 1u);
    EXPECT_EQ(s.frames_out, 40u);
    EXPECT_EQ(s.frames_dropped, 0u);
    EXPECT_EQ(log.error, "");
    EXPECT_TRUE(log.in_order());
}

// Slow writers: the writer of frame 3 waits until the consumer saw frame 2 (the other writers go
// on meanwhile): frames still arrive in order, none lost.
TYPED_TEST_P(PipelineBehaviour, SlowWriter) {
    using P = typename TestFixture::template pipe<4>;
    auto& env = this->env;
    gate frame2_seen;
    frame_log log;
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), this->template config<4>(3),
        [&](write_only_view<float> v, std::uint64_t k) {
            if (k == 3) {
                EXPECT_TRUE(frame2_seen.wait());  // waits (bounded) for the consumer
            }
            write_frame(v, k);
        },
        this->template gpu<4>(), [&](std::span<const float> out, std::uint64_t k) {
            log.add(out, k);
            if (k == 2) frame2_seen.open();
        });
    const auto s = env.run(p.run(30));
    EXPECT_EQ(s.frames_out, 30u);
    EXPECT_EQ(log.error, "");
    EXPECT_TRUE(log.in_order());
}

// drop_oldest: the consumer, held at its first frame until every other output slot holds a
// finished frame, then gets the newest; the older ones are dropped and counted; frames out +
// dropped = frames; what arrives is in order and correct.
TYPED_TEST_P(PipelineBehaviour, DropOldestCountsEveryDrop) {
    using P = typename TestFixture::template pipe<4>;
    auto& env = this->env;
    frame_log log;
    P* pp = nullptr;
    auto cfg = this->template config<4>(2);
    cfg.on_overflow = overflow::drop_oldest;
    bool first = true;
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), cfg, write_frame, this->template gpu<4>(),
        [&](std::span<const float> out, std::uint64_t k) {
            if (std::exchange(first, false)) {
                // Bounded: the 3 other output slots fill with finished frames.
                EXPECT_TRUE(eventually([&] { return pp->statistics().frames_gpu >= k + 4; }));
            }
            log.add(out, k);
        });
    pp = &p;
    const auto s = env.run(p.run(40));
    EXPECT_GE(s.frames_dropped, 2u);
    EXPECT_EQ(s.frames_out + s.frames_dropped, 40u);
    EXPECT_EQ(s.frames_gpu, 40u);
    EXPECT_EQ(log.error, "");
    EXPECT_TRUE(log.in_order());
}

// request_stop from the consumer at frame 20: run returns (bounded), the statistics say what ran.
TYPED_TEST_P(PipelineBehaviour, CancellationMidStream) {
    using P = typename TestFixture::template pipe<3>;
    auto& env = this->env;
    frame_log log;
    P* pp = nullptr;
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), this->template config<3>(3), write_frame,
        this->template gpu<3>(), [&](std::span<const float> out, std::uint64_t k) {
            log.add(out, k);
            if (k == 20 && pp != nullptr) pp->request_stop();
        });
    pp = &p;
    const auto s = env.run(p.run(100000));
    EXPECT_EQ(s.frames_out, 21u);
    EXPECT_LT(s.frames_in, 100000u);
    EXPECT_EQ(log.error, "");
    EXPECT_TRUE(log.in_order());
    // The same pipeline runs again after the stop, and again after a complete run: what the
    // stopped run left in its slots is discarded, indices go on, every frame checks out.
    const std::size_t before = log.seen.size();
    pp = nullptr;  // no stop this time (the callback stops only at frame 20 through pp)
    const auto s2 = env.run(p.run(10));
    EXPECT_EQ(s2.frames_out, 10u);
    const auto s3 = env.run(p.run(10));
    EXPECT_EQ(s3.frames_out, 10u);
    EXPECT_EQ(log.seen.size(), before + 20);
    EXPECT_EQ(log.error, "");
    EXPECT_TRUE(log.in_order());
}

TYPED_TEST_P(PipelineBehaviour, WriterFaultIsRethrown) {
    using P = typename TestFixture::template pipe<3>;
    auto& env = this->env;
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), this->template config<3>(3),
        [](write_only_view<float> v, std::uint64_t k) {
            if (k == 7) throw std::runtime_error("writer fault at frame 7");
            write_frame(v, k);
        },
        this->template gpu<3>(), [](std::span<const float>, std::uint64_t) {});
    try {
        (void)env.run(p.run(1000));
        ADD_FAILURE() << "expected the writer's fault";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "writer fault at frame 7");
    }
    EXPECT_LT(p.statistics().frames_out, 1000u);
}

TYPED_TEST_P(PipelineBehaviour, GpuStageFaultNamesFrameAndStage) {
    using P = typename TestFixture::template pipe<3>;
    auto& env = this->env;
    auto inner = this->template gpu<3>();
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), this->template config<3>(2), write_frame,
        [&](auto& in, auto& out, std::uint64_t k) {
            if (k == 5) throw_error(errc::device_lost, "simulated device loss");
            return inner(in, out, k);
        },
        [](std::span<const float>, std::uint64_t) {});
    std::string what;
    expect_error(
        [&] {
            try {
                (void)env.run(p.run(1000));
            } catch (const std::system_error& e) {
                what = e.what();
                throw;
            }
        },
        errc::device_lost, {"pipeline: frame 5", "gpu stage", "simulated device loss"});
    const std::string code = make_error_code(errc::device_lost).message();
    EXPECT_EQ(what.find(code), what.size() - code.size()) << "the code's message once, at the end: " << what;
}

TYPED_TEST_P(PipelineBehaviour, ConsumerFaultIsRethrown) {
    using P = typename TestFixture::template pipe<3>;
    auto& env = this->env;
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), this->template config<3>(2), write_frame,
        this->template gpu<3>(), [](std::span<const float>, std::uint64_t k) {
            if (k == 3) throw std::logic_error("consumer fault at frame 3");
        });
    EXPECT_THROW((void)env.run(p.run(1000)), std::logic_error);
    EXPECT_EQ(p.statistics().frames_out, 3u);
}

TYPED_TEST_P(PipelineBehaviour, BadConfigurationIsRejected) {
    using P = typename TestFixture::template pipe<3>;
    auto& env = this->env;
    pipeline_config c;
    c.input_elements = 0;
    c.output_elements = 4;
    expect_error([&] { P p(env.dev(), env.notifier(), env.stage(), env.pool(), c, write_frame, this->template gpu<3>()); },
                 errc::invalid_argument, {"0 input", "at least 1"});
    c.input_elements = 4;
    expect_error([&] { P p(env.dev(), env.notifier(), env.stage(), env.pool(), c, {}, this->template gpu<3>()); },
                 errc::invalid_argument, {"fill and gpu"});
}


// Each forced path (staged inputs through host staging memory and a copy; outputs written to a
// device-local buffer and copied into the slot), every frame checked, two runs in a row.
TYPED_TEST_P(PipelineBehaviour, StagedInputsAndCopiedOutputs) {
    using P = typename TestFixture::template pipe<3>;
    auto& env = this->env;
    for (const input_path in : {input_path::direct, input_path::staged})
        for (const output_path out : {output_path::direct, output_path::copied}) {
            pipeline_config cfg = this->template config<3>(2);
            cfg.in_path = in;
            cfg.out_path = out;
            frame_log log;
            auto direct = env.template gpu<typename P::input_ring::buffer_type, typename P::output_ring::buffer_type>();
            auto copied = env.template gpu<typename P::input_ring::buffer_type, typename P::device_output>();
            P p(env.dev(), env.notifier(), env.stage(), env.pool(), cfg, write_frame, direct, copied,
                [&](std::span<const float> o, std::uint64_t k) { log.add(o, k); });
            EXPECT_EQ(p.paths().input, in);
            EXPECT_EQ(p.paths().output, out);
            EXPECT_NE(p.paths().input_reason.find("forced"), std::string::npos);
            for (int run = 0; run < 2; ++run) {
                const pipeline_stats s = env.run(p.run(25));
                EXPECT_EQ(s.frames_out, 25u) << to_string(in) << " / " << to_string(out);
            }
            EXPECT_EQ(log.error, "") << to_string(in) << " / " << to_string(out);
            ASSERT_EQ(log.seen.size(), 50u);
            for (std::uint64_t k = 0; k < 50; ++k) ASSERT_EQ(log.seen[k], k);
        }
}

// automatic takes a path and says why; a forced copied output needs a callable that takes the
// device-local output.
TYPED_TEST_P(PipelineBehaviour, AutomaticPathsAreReportedAndForcedOnesChecked) {
    using P = typename TestFixture::template pipe<3>;
    auto& env = this->env;
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), this->template config<3>(2), write_frame, this->template gpu<3>());
    EXPECT_FALSE(p.paths().input_reason.empty());
    EXPECT_EQ(p.paths().output, output_path::direct);  // the callable takes only the output slot
    EXPECT_FALSE(p.paths().output_reason.empty());
    pipeline_config c = this->template config<3>(1);
    c.out_path = output_path::copied;
    expect_error([&] { P q(env.dev(), env.notifier(), env.stage(), env.pool(), c, write_frame, this->template gpu<3>()); },
                 errc::invalid_argument, {"output_path::copied"});
}

// max_in_flight: no writer starts frame k before the consumer took frame k - max_in_flight
// (checked in the fill), over two runs (frame indices go on); every frame checked.
TYPED_TEST_P(PipelineBehaviour, MaxInFlightBoundsFramesAhead) {
    using P = typename TestFixture::template pipe<4>;
    auto& env = this->env;
    pipeline_config cfg = this->template config<4>(4);
    cfg.max_in_flight = 2;
    frame_log log;
    std::atomic<std::uint64_t> consumed{0};
    std::atomic<std::uint64_t> violations{0};
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), cfg,
        [&](write_only_view<float> v, std::uint64_t k) {
            // Frame k may start once frame k - 2 was taken; the callback of frame k - 2 may not
            // have begun yet, that of k - 3 has: consumed >= k - 2.
            if (k > consumed.load() + 2) violations.fetch_add(1);
            write_frame(v, k);
        },
        this->template gpu<4>(),
        [&](std::span<const float> o, std::uint64_t k) {
            consumed.store(k + 1);  // taken: the writers may go on from here
            log.add(o, k);
        });
    for (int run = 0; run < 2; ++run) EXPECT_EQ(env.run(p.run(40)).frames_out, 40u);
    EXPECT_EQ(violations.load(), 0u);
    EXPECT_EQ(log.error, "");
    EXPECT_EQ(log.seen.size(), 80u);
    EXPECT_TRUE(log.in_order());
}

REGISTER_TYPED_TEST_SUITE_P(PipelineBehaviour, OneWriterEveryFrameInOrder, ManyWritersSlotsTwoToEight, PullModeNext,
                            SlowConsumerBackPressure, SlowWriter, DropOldestCountsEveryDrop, CancellationMidStream,
                            WriterFaultIsRethrown, GpuStageFaultNamesFrameAndStage, ConsumerFaultIsRethrown,
                            BadConfigurationIsRejected, StagedInputsAndCopiedOutputs,
                            AutomaticPathsAreReportedAndForcedOnesChecked, MaxInFlightBoundsFramesAhead);

} // namespace
