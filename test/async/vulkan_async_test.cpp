// The async layer on Vulkan (lavapipe in CI, validation + synchronization validation on): the
// fence waiter behind when_complete. One translation unit for every Vulkan async test.
#include <unibuf/async/fill_awaitable.hpp>
#include <unibuf/async/stream_awaitable.hpp>
#include <unibuf/async/sync_wait.hpp>
#include <unibuf/async/task.hpp>
#include <unibuf/async/thread_pool.hpp>
#include <unibuf/async/vulkan/fence_waiter.hpp>
#include <unibuf/async/when_all.hpp>
#include <unibuf/async/when_complete.hpp>

#include "../common/expect_error.hpp"
#include "../vulkan/vk_env.hpp"
#include "pipeline_tests.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::vulkan_env;

using plain = basic_buffer<float, vulkan_backend, access::read_write, coherence::coherent, placement::host, sync::fenced>;

struct saxpy_params {
    float a;
    std::uint32_t n;
};

vulkan_backend::fence saxpy(plain& x, plain& y, float a) {
    const saxpy_params p{a, static_cast<std::uint32_t>(x.size())};
    const auto groups = static_cast<std::uint32_t>((x.size() + 63) / 64);
    return dispatch(vulkan_env::get(), vulkan_env::saxpy(), dispatch_size{groups, 1, 1}, push_constants(p),
                    bind(x, usage::read), bind(y, usage::read_write));
}

class VulkanAsync : public ::testing::Test {
protected:
    void TearDown() override { vulkan_env::expect_clean(); }
};

TEST_F(VulkanAsync, WhenCompleteResumesOnThePoolAfterTheDispatch) {
    auto& gpu = vulkan_env::get();
    vulkan_fence_waiter waiter(gpu);
    thread_pool pool(2);
    constexpr std::size_t n = 1 << 16;
    plain x(gpu, n);
    plain y(gpu, n);
    x.fill(2.0f);
    y.fill(1.0f);
    auto step = [&]() -> task<bool> {
        auto f = saxpy(x, y, 3.0f);
        co_await when_complete(waiter, f, pool);
        co_return pool.on_worker() && gpu.is_complete(f);
    };
    EXPECT_TRUE(sync_wait(step()));
    const auto v = y.to_vector();
    for (std::size_t i = 0; i < n; i += 997) ASSERT_EQ(v[i], 7.0f) << i;
    EXPECT_EQ(waiter.pending(), 0u);
}

// Coroutines on several pool threads dispatch and await at once; the one waiter thread serves all.
TEST_F(VulkanAsync, ManyConcurrentAwaitsOnOneWaiter) {
    auto& gpu = vulkan_env::get();
    vulkan_fence_waiter waiter(gpu);
    thread_pool pool(3);
    constexpr int tasks = 24;
    constexpr int rounds = 8;
    std::vector<plain> xs;
    std::vector<plain> ys;
    for (int i = 0; i < tasks; ++i) {
        xs.emplace_back(gpu, 256);
        ys.emplace_back(gpu, 256);
        xs.back().fill(1.0f);
        ys.back().fill(static_cast<float>(i));
    }
    auto one = [&](int i) -> task<int> {
        co_await pool.schedule();
        for (int r = 0; r < rounds; ++r) {
            auto f = saxpy(xs[static_cast<std::size_t>(i)], ys[static_cast<std::size_t>(i)], 1.0f);
            co_await when_complete(waiter, f, pool);
        }
        co_return i;
    };
    std::vector<task<int>> all;
    for (int i = 0; i < tasks; ++i) all.push_back(one(i));
    const auto r = sync_wait(when_all(std::move(all)));
    ASSERT_EQ(r.size(), static_cast<std::size_t>(tasks));
    for (int i = 0; i < tasks; ++i) {
        const auto v = ys[static_cast<std::size_t>(i)].to_vector();
        EXPECT_EQ(v[0], static_cast<float>(i + rounds)) << "task " << i;
        EXPECT_EQ(v[255], static_cast<float>(i + rounds)) << "task " << i;
    }
}

TEST_F(VulkanAsync, AFenceNeverIssuedIsRejected) {
    auto& gpu = vulkan_env::get();
    vulkan_fence_waiter waiter(gpu);
    thread_pool pool(1);
    const vulkan_backend::fence never{gpu.submitted_fence().value + 1000};
    auto step = [&]() -> task<void> { co_await when_complete(waiter, never, pool); };
    unibuf_test::expect_error([&] { sync_wait(step()); }, errc::invalid_argument, {"never issued"});
    unibuf_test::expect_error([&] { vulkan_fence_waiter w(gpu, std::chrono::nanoseconds(0)); }, errc::invalid_argument,
                              {"slice"});
}

// 10^4 dispatch + await rounds from one coroutine (each resumed by the waiter thread, or at once).
TEST_F(VulkanAsync, DeepDispatchAwaitLoop) {
    auto& gpu = vulkan_env::get();
    vulkan_fence_waiter waiter(gpu);
    thread_pool pool(2);
    plain x(gpu, 64);
    plain y(gpu, 64);
    x.fill(1.0f);
    y.fill(0.0f);
    constexpr int rounds = 10000;
    auto loop = [&]() -> task<int> {
        for (int i = 0; i < rounds; ++i) {
            auto f = saxpy(x, y, 1.0f);
            co_await when_complete(waiter, f, pool);
        }
        co_return rounds;
    };
    EXPECT_EQ(sync_wait(loop()), rounds);
    EXPECT_EQ(y.to_vector()[63], static_cast<float>(rounds));
}

// push_async over a 2-segment stream whose blocks feed dispatches: the pushes that come back to a
// segment await its fence through the waiter; every block reaches the device.
TEST_F(VulkanAsync, PushAsyncFeedsDispatches) {
    auto& gpu = vulkan_env::get();
    vulkan_fence_waiter waiter(gpu);
    thread_pool pool(2);
    upload_stream<vulkan_backend> s(gpu, 4096, 2);
    plain y(gpu, 256);
    y.fill(0.0f);
    constexpr int pushes = 50;
    auto feed = [&]() -> task<void> {
        for (int i = 0; i < pushes; ++i) {
            auto b = co_await push_async<float>(s, 256, waiter, pool);
            auto v = b.view();
            for (std::size_t j = 0; j < v.size(); ++j) v[j] = 1.0f;
            const saxpy_params p{1.0f, 256};
            (void)dispatch(gpu, vulkan_env::saxpy(), dispatch_size{4, 1, 1}, push_constants(p), bind(b, usage::read),
                           bind(y, usage::read_write));
        }
    };
    sync_wait(feed());
    s.wait_idle();
    const auto v = y.to_vector();
    EXPECT_EQ(v[0], static_cast<float>(pushes));
    EXPECT_EQ(v[255], static_cast<float>(pushes));
    EXPECT_GT(s.segment_count(), 1u);
}

// ---- the pipeline suite on Vulkan ------------------------------------------------------------

// out = 2 * in on the device: copy in -> out, then saxpy(a = 1, x = in, y = out). `VkEnv`: the
// default backend (timeline fences, inputs where the backend places them), or the one with every
// buffer staged and a VkFence per submission (the waiter's VkFence fallback).
template <class VkEnv>
struct basic_vulkan_pipeline_env {
    using backend = vulkan_backend;
    vulkan_fence_waiter waiter{VkEnv::get()};
    thread_pool workers{3};

    vulkan_backend& dev() { return VkEnv::get(); }
    vulkan_fence_waiter& notifier() { return waiter; }
    thread_pool& stage() { return workers; }
    thread_pool& pool() { return workers; }

    template <class In, class Out>
    std::function<vulkan_backend::fence(In&, Out&, std::uint64_t)> gpu() {
        return [](In& in, Out& out, std::uint64_t) {
            (void)out.copy_from(in);
            const saxpy_params p{1.0f, static_cast<std::uint32_t>(in.size())};
            const auto groups = static_cast<std::uint32_t>((in.size() + 63) / 64);
            return dispatch(VkEnv::get(), VkEnv::saxpy(), dispatch_size{groups, 1, 1}, push_constants(p),
                            bind(in, usage::read), bind(out, usage::read_write));
        };
    }
    template <class T>
    T run(task<T> t) {
        return sync_wait(std::move(t));
    }
    void expect_clean() { VkEnv::expect_clean(); }
};
using vulkan_pipeline_env = basic_vulkan_pipeline_env<vulkan_env>;
using vulkan_staged_pipeline_env = basic_vulkan_pipeline_env<unibuf_test::vulkan_staged_env>;

using vulkan_pipeline_envs = ::testing::Types<vulkan_pipeline_env, vulkan_staged_pipeline_env>;
INSTANTIATE_TYPED_TEST_SUITE_P(Vulkan, PipelineBehaviour, vulkan_pipeline_envs);

TEST_F(VulkanAsync, PipelineReportsTheSlotMemory) {
    vulkan_pipeline_env env;
    using P = pipeline<vulkan_backend, 2>;
    pipeline_config c;
    c.input_elements = 256;
    c.output_elements = 256;
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), c, unibuf_test::write_frame,
        env.gpu<P::input_ring::buffer_type, P::output_ring::buffer_type>());
    EXPECT_FALSE(p.input_report().reason.empty());
    EXPECT_FALSE(p.output_report().reason.empty());
    std::cout << "vulkan pipeline slots: input " << p.input_report().reason << "; output " << p.output_report().reason
              << "\n";
    std::cout << "vulkan pipeline paths: input " << to_string(p.paths().input) << " (" << p.paths().input_reason
              << "); output " << to_string(p.paths().output) << " (" << p.paths().output_reason << ")\n";
}

// fill_async on Vulkan: a staged fill through a 2-chunk ring (writers wait for chunks, the
// producer's fill thread for their copies) while the awaiting coroutine is suspended; then the
// data feeds a dispatch. Two fills: the second awaits the ring's last copy (when_complete).
TEST_F(VulkanAsync, FillAsyncStagedThroughTheRingFeedsADispatch) {
    auto& gpu = vulkan_env::get();
    vulkan_fence_waiter waiter(gpu);
    thread_pool pool(2);
    produce_options o;
    o.grain_bytes = 4096;
    o.chunk_bytes = 16384;
    o.ring_chunks = 2;
    o.min_grains_per_writer = 1;
    o.force = produce_path::staged_pipelined;
    producer<vulkan_backend> prod(gpu, 3, o);
    constexpr std::size_t n = 1 << 16;
    plain x(gpu, n);
    plain y(gpu, n);
    for (int round = 0; round < 2; ++round) {
        const float base = static_cast<float>(round);
        auto step = [&]() -> task<bool> {
            auto r = co_await fill_async(
                prod, x,
                [base](write_only_view<float> out, std::size_t first) {
                    for (std::size_t i = 0; i < out.size(); ++i) out[i] = base + static_cast<float>((first + i) % 7);
                },
                waiter, pool);
            const bool staged = r.path == produce_path::staged_pipelined && r.copies == n * sizeof(float) / 16384;
            y.fill(1.0f);
            co_await when_complete(waiter, saxpy(x, y, 2.0f), pool);
            co_return staged && pool.on_worker();
        };
        EXPECT_TRUE(sync_wait(step()));
        const auto v = y.to_vector();
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i) bad += v[i] != 1.0f + 2.0f * (base + static_cast<float>(i % 7)) ? 1 : 0;
        EXPECT_EQ(bad, 0u);
    }
}

} // namespace
