// Two OpenGL contexts on two threads at once (issue "Reliability", item 1): each thread makes its
// own headless debug context, backend, pool, ring and pipeline (with its own context loop), and
// runs them while the other does the same; every result is checked, and each context's debug
// output must stay free of GL_DEBUG_TYPE_ERROR. A buffer of one context bound to the other's
// dispatch, or copied into the other's buffer, is refused before any GL call, naming both.
#include "../common/expect_error.hpp"
#include "../common/context_workload.hpp"
#include "../common/gate.hpp"
#include "keep_libraries.hpp"

#include <unibuf/async/gl/context_loop.hpp>
#include <unibuf/async/pipeline.hpp>
#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/ops/gl/conv2d.hpp>
#include <unibuf/opengl.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace unibuf;

constexpr std::uint32_t side = 40;
constexpr std::size_t n = std::size_t{side} * side;

egl_context::options debug_options() {
    egl_context::options o;
    o.debug = true;
    return o;
}


// One thread's context and everything made on it.
struct world {
    egl_context context{debug_options()};
    gl_debug_log log{true};
    gl_backend gpu;
    conv2d<gl_backend> conv{gpu, unibuf_test::scale_desc(side)};
    device_buffer<float, gl_backend> weight{gpu, 1}, bias{gpu, 1};

    explicit world(float scale) {
        unibuf_test::keep_driver_libraries_loaded();
        weight.write(std::vector<float>{scale});
        bias.write(std::vector<float>{0.0f});
    }
    template <class In, class Out>
    gl_backend::fence scale(In& in, Out& out) {
        return conv(in, weight, bias, out);
    }
    std::string errors() {
        std::string s;
        for (const auto& m : log.take_errors()) s += gl_debug_log::describe(m) + "\n";
        return s;
    }
};

// Pool, ring and pipeline on `w`'s context (this thread; test/common/context_workload.hpp): the
// context loop delivers the completions and runs the GPU stage, this thread being the context thread.
std::size_t workload(world& w, float scale, std::uint64_t salt) {
    gl_context_loop loop(w.gpu);
    thread_pool workers(2);
    return unibuf_test::context_workload(
        w.gpu, n, scale, salt, [&w](auto& in, auto& out) { return w.scale(in, out); }, loop, loop, workers,
        [&loop](auto t) { return loop.run(std::move(t)); });
}

TEST(GlContexts, TwoContextsOnTwoThreadsWorkAtTheSameTime) {
    unibuf_test::gate start;
    // glad's GL pointers are process-wide and every egl_context reloads them: contexts are made one
    // at a time, before any thread calls GL through them (egl_context's documented rule).
    std::mutex making;
    unibuf_test::gate made[2];
    std::atomic<std::size_t> wrong{0};
    std::vector<std::string> errors(2), gl_errors(2), renderers(2);
    std::vector<std::thread> ts;
    for (std::size_t i = 0; i < 2; ++i)
        ts.emplace_back([&, i] {
            try {
                std::unique_lock lk(making);
                world w(2.0f + static_cast<float>(i));
                renderers[i] = w.gpu.capabilities().renderer;
                lk.unlock();
                made[i].open();
                if (!start.wait()) throw std::runtime_error("the start gate did not open");
                wrong += workload(w, 2.0f + static_cast<float>(i), 10 * i);
                gl_errors[i] = w.errors();
            } catch (const std::exception& e) {
                errors[i] = e.what();
                made[i].open();
            }
        });
    EXPECT_TRUE(made[0].wait() && made[1].wait()) << "a context was not made in time";
    start.open();  // both contexts exist: now they work at the same time
    for (auto& t : ts) t.join();
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(errors[i], "") << "context " << i;
        EXPECT_EQ(gl_errors[i], "") << "context " << i;
    }
    EXPECT_EQ(wrong.load(), 0u);
}

TEST(GlContexts, ABufferOfOneContextIsRefusedByTheOtherBeforeAnyGlCall) {
    // Thread A makes its world and a buffer, then waits while thread B (its own world) tries to
    // use that buffer; A destroys its objects on its own thread at the end.
    unibuf_test::gate a_ready, b_done;
    world* wa = nullptr;
    device_buffer<float, gl_backend>* in_a = nullptr;
    std::string error_a, error_b;
    std::thread ta([&] {
        try {
            world w(2.0f);
            device_buffer<float, gl_backend> in(w.gpu, n);
            in.write(std::vector<float>(n, 1.0f));
            wa = &w;
            in_a = &in;
            a_ready.open();
            if (!b_done.wait()) throw std::runtime_error("thread B did not finish");
            error_a = w.errors();
        } catch (const std::exception& e) {
            error_a = e.what();
            a_ready.open();
        }
    });
    std::thread tb([&] {
        try {
            // B's context is made once A is idle (glad's pointers are process-wide, see above).
            if (!a_ready.wait() || in_a == nullptr) throw std::runtime_error("thread A did not get ready");
            world w(3.0f);
            device_buffer<float, gl_backend> out(w.gpu, n), in_b(w.gpu, n);
            const std::string label_a = unibuf::detail::backend_label(wa->gpu), label_b = unibuf::detail::backend_label(w.gpu);
            unibuf_test::expect_error([&] { (void)w.scale(*in_a, out); }, errc::invalid_argument,
                                      {"binding 0 lives on", label_a.c_str(), "the dispatch runs on", label_b.c_str()});
            unibuf_test::expect_error([&] { (void)out.copy_from(*in_a); }, errc::invalid_argument,
                                      {"copy_from a buffer that lives on", label_a.c_str(), label_b.c_str()});
            // B still works with its own buffers.
            in_b.write(std::vector<float>(n, 2.0f));
            (void)w.scale(in_b, out);
            const auto got = out.to_vector();
            EXPECT_EQ(got.front(), 6.0f);
            EXPECT_EQ(got.back(), 6.0f);
            error_b = w.errors();
        } catch (const std::exception& e) {
            error_b = e.what();
        }
        b_done.open();
    });
    ta.join();
    tb.join();
    EXPECT_EQ(error_a, "");
    EXPECT_EQ(error_b, "");
}

} // namespace
