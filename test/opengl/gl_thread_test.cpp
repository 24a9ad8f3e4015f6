// Thread rules of the OpenGL backend: GL calls off the context thread raise errc::wrong_thread;
// writer threads fill disjoint ranges of a persistent mapping through gl_parallel_writes, and the
// context thread flushes and dispatches after them. Run under ThreadSanitizer as well.
#include "../common/expect_error.hpp"
#include "gl_env.hpp"

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::gl_env;
using unibuf_test::gl_test;

struct saxpy_params {
    float a;
    std::uint32_t n;
};

/// Runs `f` on a new thread and returns what it threw (empty code when nothing).
std::pair<std::error_code, std::string> off_thread(const std::function<void()>& f) {
    std::pair<std::error_code, std::string> r;
    std::thread t([&] {
        try {
            f();
        } catch (const std::system_error& e) {
            r = {e.code(), e.what()};
        }
    });
    t.join();
    return r;
}

void expect_wrong_thread(const std::pair<std::error_code, std::string>& r, const std::string& call) {
    EXPECT_EQ(r.first, make_error_code(errc::wrong_thread)) << call << ": " << r.second;
    EXPECT_NE(r.second.find(call), std::string::npos) << r.second;
    EXPECT_NE(r.second.find("context"), std::string::npos) << r.second;
}

TEST_F(gl_test, GlCallsOffTheContextThreadRaiseWrongThread) {
    gl_backend& g = gpu();
    EXPECT_EQ(g.context_thread(), std::this_thread::get_id());
    basic_buffer<float, gl_backend, placement::host, sync::none> x(g, 64);
    basic_buffer<float, gl_backend, placement::host, sync::none> y(g, 64);
    const memory_request req = decltype(x)::request_for(64);

    expect_wrong_thread(off_thread([&] { (void)g.allocate(req); }), "allocate");
    expect_wrong_thread(off_thread([&] { x.flush(); }), "gl_backend::flush");
    expect_wrong_thread(off_thread([&] { x.invalidate(); }), "gl_backend::invalidate");
    expect_wrong_thread(off_thread([&] { y.copy_from(x); }), "gl_backend::copy");
    expect_wrong_thread(off_thread([&] { (void)g.submitted_fence(); }), "gl_backend::submitted_fence");
    expect_wrong_thread(off_thread([&] { gl_kernel k(g, kernels::saxpy_glsl); }), "compile kernel");
    const saxpy_params p{1.0f, 64};
    gl_kernel& saxpy = gl_env::saxpy();  // built here, on the context thread
    expect_wrong_thread(off_thread([&] {
                            unibuf::dispatch(g, saxpy, dispatch_size{1}, push_constants(p), bind(x), bind(y));
                        }),
                        "gl_backend::dispatch");
    std::error_code ec;
    std::thread([&] { (void)g.try_allocate(req, ec); }).join();
    EXPECT_EQ(ec, make_error_code(errc::wrong_thread));

    // A pending fence cannot be asked about off the context thread; a complete one can.
    auto pending = g.submitted_fence();
    expect_wrong_thread(off_thread([&] { (void)g.is_complete(pending); }), "gl_backend::is_complete");
    expect_wrong_thread(off_thread([&] { (void)g.wait(pending, std::chrono::seconds(1)); }), "gl_backend::wait");
    ASSERT_TRUE(g.wait(pending, default_wait_timeout));
    bool complete = false;
    std::thread([&] { complete = g.is_complete(pending); }).join();
    EXPECT_TRUE(complete);
}

TEST_F(gl_test, BuffersReleasedOnAnotherThreadAreDeletedOnTheContextThread) {
    auto b = std::make_unique<basic_buffer<float, gl_backend, placement::host, sync::fenced>>(gpu(), 100);
    b->fill(1.0f);
    const GLuint name = b->allocation().buffer();
    ASSERT_TRUE(b->wait(default_wait_timeout));
    std::thread([&] { b.reset(); }).join();  // idle: allowed anywhere; the GL delete is queued
    EXPECT_EQ(glIsBuffer(name), GL_TRUE) << "deleted off the context thread";
    (void)gpu().submitted_fence();  // any GL call of the backend collects the queue
    EXPECT_EQ(glIsBuffer(name), GL_FALSE);
}

template <class Buf>
void parallel_fill_then_dispatch(gl_backend& g, std::size_t writers, std::size_t per_writer) {
    const std::size_t n = writers * per_writer;
    Buf x(g, n);
    basic_buffer<float, gl_backend, placement::host, sync::fenced> y(g, n);
    y.fill(1.0f);
    for (int round = 0; round < 3; ++round) {  // rounds: the batch waits for the previous dispatch
        gl_parallel_writes<Buf> batch(x);
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < writers; ++t) {
            // Claimed here, written and published (claim destructor) on the writer thread.
            threads.emplace_back([c = batch.acquire(t * per_writer, per_writer), round]() mutable {
                auto v = c.view();
                for (std::size_t i = 0; i < c.size(); ++i)
                    v[i] = static_cast<float>(c.offset() + i) + static_cast<float>(round);
            });
        }
        batch.finish();  // waits for every claim, then flushes on this (the context) thread
        for (auto& th : threads) th.join();
        const saxpy_params p{1.0f, static_cast<std::uint32_t>(n)};
        unibuf::dispatch(g, gl_env::saxpy(), dispatch_size{static_cast<std::uint32_t>((n + 63) / 64)},
                               push_constants(p), bind(x, usage::read), bind(y));
    }
    // y = 1 + sum over rounds of (i + round) = 1 + 3i + 3
    const auto got = y.to_vector();
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], 4.0f + 3.0f * static_cast<float>(i)) << i;
    if constexpr (Buf::host_readable) {
        // The context thread reads what the writers wrote: TSan sees the claims' happens-before.
        const auto host = x.to_vector();
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(host[i], static_cast<float>(i) + 2.0f) << i;
    }
}

TEST_F(gl_test, WriterThreadsFillDisjointRangesOfAPersistentMapping) {
    using upload = basic_buffer<float, gl_backend, access::write_only, coherence::write_combined, placement::automatic, sync::fenced>;
    using flushed = basic_buffer<float, gl_backend, access::read_write, coherence::explicit_flush, placement::host, sync::none>;
    using lazy = basic_buffer<float, gl_backend, access::read_write, coherence::coherent, placement::device_mapped, sync::lazy>;
    {
        SCOPED_TRACE("upload_buffer (write-combined, fenced)");
        parallel_fill_then_dispatch<upload>(gpu(), 4, 4096);
    }
    {
        SCOPED_TRACE("explicit flush, sync::none");
        parallel_fill_then_dispatch<flushed>(gpu(), 4, 1000);
    }
    {
        SCOPED_TRACE("coherent, lazy");
        parallel_fill_then_dispatch<lazy>(gpu(), 3, 777);
    }
}

TEST_F(gl_test, ParallelWritesRejectOverlapsAndFinishOffTheContextThread) {
    basic_buffer<float, gl_backend, placement::host, sync::fenced> x(gpu(), 100);
    gl_parallel_writes<decltype(x)> batch(x);
    auto a = batch.acquire(0, 50);
    unibuf_test::expect_error([&] { auto b = batch.acquire(40, 20); }, errc::invalid_argument, {"overlaps the claim [0, 50)"});
    EXPECT_THROW((void)batch.acquire(90, 11), std::system_error);
    expect_wrong_thread(off_thread([&] { batch.finish(); }), "finish");
    // An open claim makes finish() time out, boundedly.
    unibuf_test::expect_error([&] { batch.finish(std::chrono::milliseconds(1)); }, errc::timeout, {});
    a.publish();
    batch.finish();
    EXPECT_THROW((void)batch.acquire(60, 1), std::system_error);
}

TEST_F(gl_test, ParallelWritesOfAnEmptyBufferAndMovedClaimsAreSafe) {
    using buf = basic_buffer<float, gl_backend, placement::host, sync::fenced>;
    buf x(gpu(), 100);
    buf y(std::move(x));
    unibuf_test::expect_error([&] { gl_parallel_writes<buf> batch(x); }, errc::invalid_argument,
                              {"empty (moved-from) buffer"});
    gl_parallel_writes<buf> batch(y, std::chrono::milliseconds(200));
    auto a = batch.acquire(10, 20);
    auto b = std::move(a);
    // NOLINTBEGIN(bugprone-use-after-move): the moved-from claim is what is tested
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(a.view().size(), 0u);
    EXPECT_EQ(a.view().data(), nullptr);
    a.publish();  // nothing: the claim is b's now
    // NOLINTEND(bugprone-use-after-move)
    EXPECT_EQ(b.size(), 20u);
    for (std::size_t i = 0; i < b.size(); ++i) b.view()[i] = 4.0f;
    // b is still open: finish waits at most its bound, then names what it waited for.
    unibuf_test::expect_error([&] { batch.finish(std::chrono::milliseconds(20)); }, errc::timeout,
                              {"1 claim(s) still open after 20 ms"});
    b.publish();
    batch.finish();
    EXPECT_EQ(y.to_vector()[10], 4.0f);
}

TEST_F(gl_test, ParallelWritesWaitForTheDevicesLastUse) {
    // The batch opens only after the dispatch that reads x is complete, so writers never race it.
    using buf = basic_buffer<float, gl_backend, placement::host, sync::fenced>;
    buf x(gpu(), 4096), y(gpu(), 4096);
    x.fill(1.0f);
    y.fill(0.0f);
    const saxpy_params p{1.0f, 4096};
    auto f = unibuf::dispatch(gpu(), gl_env::saxpy(), dispatch_size{64}, push_constants(p), bind(x, usage::read), bind(y));
    gl_parallel_writes<buf> batch(x);
    EXPECT_TRUE(gpu().is_complete(f));
    std::thread([&] {
        auto c = batch.acquire(0, 4096);
        for (std::size_t i = 0; i < 4096; ++i) c.view()[i] = 2.0f;
    }).join();
    batch.finish();
    EXPECT_EQ(y.to_vector(), std::vector<float>(4096, 1.0f)) << "the first dispatch saw the old data";
    EXPECT_EQ(x.to_vector(), std::vector<float>(4096, 2.0f));
}

} // namespace
