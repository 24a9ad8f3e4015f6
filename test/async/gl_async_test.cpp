// The async layer on OpenGL (llvmpipe through EGL in CI, debug output checked): the context
// thread's loop as scheduler and fence notifier. One translation unit for every GL async test.
#include <unibuf/async/gl/context_loop.hpp>
#include <unibuf/async/stream_awaitable.hpp>
#include <unibuf/async/sync_wait.hpp>
#include <unibuf/async/task.hpp>
#include <unibuf/async/thread_pool.hpp>
#include <unibuf/async/when_all.hpp>
#include <unibuf/async/when_complete.hpp>
#include <unibuf/ops/saxpy/saxpy.glsl.hpp>

#include "../common/expect_error.hpp"
#include "../opengl/gl_env.hpp"
#include "pipeline_tests.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::gl_env;

using plain = basic_buffer<float, gl_backend, access::read_write, coherence::coherent, placement::host, sync::fenced>;

struct saxpy_params {
    float a;
    std::uint32_t n;
};

gl_backend::fence saxpy(plain& x, plain& y, float a) {
    const saxpy_params p{a, static_cast<std::uint32_t>(x.size())};
    const auto groups = static_cast<std::uint32_t>((x.size() + 63) / 64);
    return dispatch(gl_env::get(), gl_env::saxpy(), dispatch_size{groups, 1, 1}, push_constants(p),
                    bind(x, usage::read), bind(y, usage::read_write));
}

class GlAsync : public unibuf_test::gl_test {};

TEST_F(GlAsync, WhenCompleteOnTheLoopResumesOnTheContextThread) {
    gl_context_loop loop(gpu());
    constexpr std::size_t n = 1 << 14;
    plain x(gpu(), n);
    plain y(gpu(), n);
    x.fill(2.0f);
    y.fill(1.0f);
    const auto ctx_thread = std::this_thread::get_id();
    auto step = [&]() -> task<bool> {
        auto f = saxpy(x, y, 3.0f);
        co_await when_complete(loop, f, loop);
        co_return std::this_thread::get_id() == ctx_thread && gpu().is_complete(f);
    };
    EXPECT_TRUE(loop.run(step()));
    const auto v = y.to_vector();
    for (std::size_t i = 0; i < n; i += 997) ASSERT_EQ(v[i], 7.0f) << i;
}

// GPU work is submitted on the context thread; the CPU side of each round runs on a pool, and
// comes back to the loop for the next dispatch.
TEST_F(GlAsync, RoundTripsBetweenThePoolAndTheContextThread) {
    gl_context_loop loop(gpu());
    thread_pool pool(2);
    constexpr std::size_t n = 256;
    plain x(gpu(), n);
    plain y(gpu(), n);
    x.fill(1.0f);
    y.fill(0.0f);
    const auto ctx_thread = std::this_thread::get_id();
    int on_pool = 0;
    int at_once = 0;  // llvmpipe often finishes a small dispatch before the await: no suspension then
    auto rounds = [&]() -> task<int> {
        for (int r = 0; r < 200; ++r) {
            co_await loop.schedule();
            auto f = saxpy(x, y, 1.0f);
            co_await when_complete(loop, f, pool);  // registered on the context thread, resumed on the pool
            if (pool.on_worker()) ++on_pool;
            if (std::this_thread::get_id() == ctx_thread) ++at_once;
        }
        co_await loop.schedule();
        co_return on_pool + at_once;
    };
    EXPECT_EQ(loop.run(rounds()), 200);
    EXPECT_EQ(y.to_vector()[n - 1], 200.0f);
}

// A fence registered off the context thread: the loop must wait it (the pool thread may not).
TEST_F(GlAsync, FenceRegisteredFromAPoolThreadIsWaitedByTheLoop) {
    gl_context_loop loop(gpu());
    thread_pool pool(2);
    constexpr std::size_t n = 1 << 12;
    plain x(gpu(), n);
    plain y(gpu(), n);
    x.fill(1.0f);
    y.fill(0.0f);
    const auto ctx_thread = std::this_thread::get_id();
    auto rounds = [&]() -> task<int> {
        int back_on_loop = 0;
        for (int r = 0; r < 100; ++r) {
            co_await loop.schedule();
            auto f = saxpy(x, y, 1.0f);
            co_await pool.schedule();
            co_await when_complete(loop, f, loop);  // from a pool thread: only the loop may wait it
            if (std::this_thread::get_id() == ctx_thread) ++back_on_loop;
        }
        co_return back_on_loop;
    };
    EXPECT_EQ(loop.run(rounds()), 100);
    EXPECT_EQ(y.to_vector()[n - 1], 100.0f);
}

// push_async on the loop (the stream's GL calls stay on the context thread): pushes that come back
// to a segment await its GL fence on the loop; every block reaches the device.
TEST_F(GlAsync, PushAsyncFeedsDispatches) {
    gl_context_loop loop(gpu());
    upload_stream<gl_backend> s(gpu(), 4096, 2);
    plain y(gpu(), 256);
    y.fill(0.0f);
    constexpr int pushes = 50;
    auto feed = [&]() -> task<void> {
        for (int i = 0; i < pushes; ++i) {
            auto b = co_await push_async<float>(s, 256, loop, loop);
            auto v = b.view();
            for (std::size_t j = 0; j < v.size(); ++j) v[j] = 1.0f;
            const saxpy_params p{1.0f, 256};
            (void)dispatch(gpu(), gl_env::saxpy(), dispatch_size{4, 1, 1}, push_constants(p), bind(b, usage::read),
                           bind(y, usage::read_write));
        }
    };
    loop.run(feed());
    s.wait_idle();
    const auto v = y.to_vector();
    EXPECT_EQ(v[0], static_cast<float>(pushes));
    EXPECT_EQ(v[255], static_cast<float>(pushes));
}

TEST_F(GlAsync, RunOffTheContextThreadIsRejected) {
    gl_context_loop loop(gpu());
    std::thread other([&] {
        auto t = []() -> task<int> { co_return 1; };
        unibuf_test::expect_error([&] { (void)loop.run(t()); }, errc::wrong_thread, {"gl_context_loop::run"});
    });
    other.join();
    auto thrower = []() -> task<int> {
        throw std::runtime_error("from the loop");
        co_return 0;
    };
    EXPECT_THROW((void)loop.run(thrower()), std::runtime_error);
}

// ---- the pipeline suite on OpenGL --------------------------------------------------------------

// The GPU stage runs on the context thread's loop; writers and the consumer on other threads.
// out = 2 * in: copy in -> out, then saxpy(a = 1, x = in, y = out).
struct gl_pipeline_env {
    using backend = gl_backend;
    gl_context_loop loop{gl_env::get()};
    thread_pool workers{3};

    gl_backend& dev() { return gl_env::get(); }
    gl_context_loop& notifier() { return loop; }
    gl_context_loop& stage() { return loop; }
    thread_pool& pool() { return workers; }

    template <class In, class Out>
    std::function<gl_backend::fence(In&, Out&, std::uint64_t)> gpu() {
        return [](In& in, Out& out, std::uint64_t) {
            (void)out.copy_from(in);
            const saxpy_params p{1.0f, static_cast<std::uint32_t>(in.size())};
            const auto groups = static_cast<std::uint32_t>((in.size() + 63) / 64);
            return dispatch(gl_env::get(), gl_env::saxpy(), dispatch_size{groups, 1, 1}, push_constants(p),
                            bind(in, usage::read), bind(out, usage::read_write));
        };
    }
    template <class T>
    T run(task<T> t) {
        return loop.run(std::move(t));
    }
    void expect_clean() { unibuf_test::expect_no_gl_errors(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(OpenGL, PipelineBehaviour, ::testing::Types<gl_pipeline_env>);

} // namespace
