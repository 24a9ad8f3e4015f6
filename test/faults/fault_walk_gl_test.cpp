// The fault injection walk (fault_walk.hpp) on the OpenGL backend (llvmpipe through EGL in CI), on
// a debug context: `gl_backend::options::faults` fails the N-th glBufferStorage / glBufferData,
// glMapBufferRange, flush or invalidate, submission (dispatch, copy, staging copy) or bounded fence
// wait, or loses the device (as GL_CONTEXT_LOST) at the N-th submission. Variants: the persistent
// mapping path and the traditional one (`options::force_traditional`: shadow copies).
//
// Every GL call runs on the test thread, where the context is current; the pipeline's GPU stage
// runs on a gl_context_loop there, its writers and consumer on a pool. The backend keeps no byte
// accounts (GL has no memory query), so the leak check is ASan/LSan's and the GL debug output's.
#include "fault_walk.hpp"
#include "fault_walk_twice.glsl.hpp"

#include "../common/expect_error.hpp"
#include "../opengl/gl_env.hpp"

#include <unibuf/async/gl/context_loop.hpp>
#include <unibuf/async/thread_pool.hpp>
#include <unibuf/opengl.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

namespace {

using namespace unibuf;
using namespace unibuf_fault_walk;

struct gl_walk_env {
    using backend = gl_backend;
    static constexpr const char* variant_name[2] = {"persistent", "traditional"};
    static constexpr std::size_t scale = 1;

    // Destruction order: loop and workers, kernel, then the backend (all on the context thread).
    gl_backend backend_;
    gl_kernel kernel_;
    std::optional<thread_pool> workers_;  // made for the pipeline only (no extra threads elsewhere)
    std::optional<gl_context_loop> loop_;

    gl_walk_env(std::shared_ptr<fault_injector> f, bool traditional)
        : backend_(make_options(std::move(f), traditional)),
          kernel_(backend_, kernels::fault_walk_twice_glsl, "fault_walk_twice") {}
    static gl_backend::options make_options(std::shared_ptr<fault_injector> f, bool traditional) {
        (void)unibuf_test::gl_context_holder::get();  // the context, current on this thread
        gl_backend::options o;
        o.faults = std::move(f);
        o.force_traditional = traditional;
        return o;
    }

    gl_backend& dev() { return backend_; }
    template <class In, class Out>
    gl_backend::fence twice(In& in, Out& out) {
        const auto groups = static_cast<std::uint32_t>((out.size() + 63) / 64);
        return dispatch(backend_, kernel_, dispatch_size{groups, 1, 1}, {}, bind(in, usage::read),
                        bind(out, usage::write));
    }
    gl_context_loop& loop() {
        if (!loop_) loop_.emplace(backend_);
        return *loop_;
    }
    gl_context_loop& notifier() { return loop(); }
    gl_context_loop& stage() { return loop(); }
    thread_pool& pool() {
        if (!workers_) workers_.emplace(2);
        return *workers_;
    }
    template <class T>
    T run(task<T> t) {
        return loop().run(std::move(t));
    }
    bool idle(std::chrono::nanoseconds b) { return backend_.wait_idle(b); }
    std::uint64_t bytes_in_use() { return 0; }  // no accounts on GL (see the file comment)
    std::string device_error() { return ""; }
    static void expect_clean() { unibuf_test::expect_no_gl_errors(); }
};

class GlFaultWalk : public ::testing::TestWithParam<walk_param> {};

TEST_P(GlFaultWalk, EveryInjectedFailureIsCleanAndTheWalkEnds) {
    const auto [index, point, traditional] = GetParam();
    walk_and_report<gl_walk_env>(index, point, traditional);
}

INSTANTIATE_TEST_SUITE_P(OpenGL, GlFaultWalk, walk_params(), walk_name<gl_walk_env>);

// A lost context refuses every later call (allocations included) and every wait for a fence not
// complete, naming the call.
TEST(GlFaultInjection, ALostContextRefusesEveryLaterCallAndNamesIt) {
    auto faults = std::make_shared<fault_injector>();
    {
        gl_walk_env env(faults, false);
        shared_buffer<float, gl_backend> a(env.dev(), 64), b(env.dev(), 64);
        a.fill(1.0f);
        faults->arm(fault_point::device_lost, 1);
        unibuf_test::expect_error([&] { (void)env.twice(a, b); }, errc::device_lost,
                                  {"injected fault: device_lost call #1", "a dispatch", "GL_CONTEXT_LOST"});
        unibuf_test::expect_error([&] { (void)b.copy_from(a); }, errc::device_lost, {"the device was lost"});
        unibuf_test::expect_error([&] { readback_buffer<float, gl_backend> c(env.dev(), 16); }, errc::device_lost,
                                  {"allocation of 64 bytes", "the device was lost"});
    }
    gl_walk_env::expect_clean();
}

// A bounded wait for a fence not seen signaled yet reports the injected timeout at once (counted
// before the driver is asked: llvmpipe has finished compute work when glDispatchCompute returns);
// the next wait sees the work done.
TEST(GlFaultInjection, AnInjectedWaitTimeoutReturnsAtOnceAndTheFenceStillCompletes) {
    auto faults = std::make_shared<fault_injector>();
    {
        gl_walk_env env(faults, false);
        shared_buffer<float, gl_backend> a(env.dev(), 256), b(env.dev(), 256);
        a.fill(2.0f);
        (void)env.twice(a, b);
        const auto f = env.dev().submitted_fence();  // a fence nobody polled yet
        faults->arm(fault_point::wait, 1);
        EXPECT_FALSE(env.dev().wait(f, bound)) << "the injected wait reports a timeout";
        EXPECT_EQ(faults->injected(), 1u);
        EXPECT_TRUE(env.dev().wait(f, bound));
        EXPECT_EQ(b.to_vector()[255], 4.0f);
    }
    gl_walk_env::expect_clean();
}

} // namespace
