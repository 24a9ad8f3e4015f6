// upload_stream on OpenGL: many blocks through a small persistent-mapped ring, each consumed by the
// saxpy kernel or a GPU copy, checked element by element against the CPU; the forced traditional
// path (shadow copy: the block's flush is a glBufferSubData); the thread rule at segment closing.
// Debug context: every GL_DEBUG_TYPE_ERROR fails the test (gl_test's TearDown).
#include "gl_env.hpp"

#include <unibuf/transfer/upload_stream.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::gl_env;
using unibuf_test::gl_test;
using unibuf_test::gl_traditional_env;

struct saxpy_params {
    float a;
    std::uint32_t n;
};

using result_buffer = basic_buffer<float, gl_backend, access::read_write, coherence::coherent, placement::host, sync::fenced>;

/// Block i holds sizes[i] floats x[j] = (7 i + j) % 97 (small integers: float sums stay exact).
float value(std::size_t block, std::size_t j) { return static_cast<float>((7 * block + j) % 97); }

std::vector<std::size_t> block_sizes(std::size_t blocks) {
    std::vector<std::size_t> s(blocks);
    for (std::size_t i = 0; i < blocks; ++i) s[i] = 1 + (i * 331) % 1000;
    return s;
}

// y += 2 x for every block x pushed into the stream, y checked against the same sums on the CPU.
void saxpy_through_stream(gl_backend& gpu, gl_kernel& saxpy, bool expect_flush) {
    constexpr std::size_t blocks = 240;
    constexpr std::size_t max_n = 1000;
    upload_stream<gl_backend> s(gpu, 16 << 10, 3);  // 48 KiB ring, ~480 KiB pushed: it wraps ~10 times
    EXPECT_EQ(s.needs_flush(), expect_flush) << s.buffer().report().reason;
    result_buffer y(gpu, max_n);
    y.fill(0.0f);
    std::vector<float> expected(max_n, 0.0f);
    const auto sizes = block_sizes(blocks);
    const std::uint64_t align = gpu.limits().min_storage_offset_alignment;
    for (std::size_t i = 0; i < blocks; ++i) {
        const std::size_t n = sizes[i];
        auto blk = s.push<float>(n);
        ASSERT_EQ(blk.byte_offset() % align, 0u) << "block " << i;
        auto v = blk.view();
        for (std::size_t j = 0; j < n; ++j) {
            v[j] = value(i, j);
            expected[j] += 2.0f * value(i, j);
        }
        const saxpy_params p{2.0f, static_cast<std::uint32_t>(n)};
        dispatch(gpu, saxpy, dispatch_size{static_cast<std::uint32_t>((n + 63) / 64)}, push_constants(p),
                       bind(blk, usage::read), bind(y, usage::read_write));
    }
    const std::vector<float> got = y.to_vector();
    for (std::size_t j = 0; j < max_n; ++j) ASSERT_EQ(got[j], expected[j]) << "element " << j;
    EXPECT_EQ(s.stats().pushes, blocks);
    EXPECT_GE(s.stats().segments_closed, 25u);
    s.wait_idle();
}

TEST_F(gl_test, StreamedBlocksFeedSaxpyOnThePersistentMapping) {
    upload_stream<gl_backend> probe(gpu(), 1024, 2);
    EXPECT_EQ(probe.allocation().mode(), gl_storage_mode::persistent);
    const GLbitfield flags = static_cast<GLbitfield>(gpu().buffer_parameter(probe.allocation().buffer(), GL_BUFFER_STORAGE_FLAGS));
    EXPECT_NE(flags & GL_MAP_PERSISTENT_BIT, 0u);
    EXPECT_NE(flags & GL_MAP_WRITE_BIT, 0u);
    EXPECT_EQ(flags & GL_MAP_READ_BIT, 0u);  // write-only: never read back
    saxpy_through_stream(gpu(), gl_env::saxpy(), false);
}

TEST_F(gl_test, StreamedBlocksFeedSaxpyOnTheTraditionalPathThroughFlush) {
    gl_backend& gpu = gl_traditional_env::get();
    gl_kernel saxpy(gpu, kernels::saxpy_glsl, "saxpy");
    saxpy_through_stream(gpu, saxpy, true);  // shadow copy: each block reaches GL by glBufferSubData
}

// Each block copied by the GPU into its own place of a result buffer, every element checked.
TEST_F(gl_test, StreamedBlocksCopiedByTheGpuArriveIntact) {
    constexpr std::size_t blocks = 150;
    const auto sizes = block_sizes(blocks);
    std::size_t total = 0;
    for (std::size_t n : sizes) total += n;
    upload_stream<gl_backend> s(gpu(), 8 << 10, 4);
    result_buffer out(gpu(), total);
    out.fill(-1.0f);
    std::size_t at = 0;
    for (std::size_t i = 0; i < blocks; ++i) {
        std::vector<float> src(sizes[i]);
        for (std::size_t j = 0; j < src.size(); ++j) src[j] = value(i, j);
        auto blk = s.upload(std::span<const float>(src));
        blk.before_device_use(usage::read);  // flush where needed (a no-op here), as dispatch does
        const auto f = gpu().copy(blk.allocation(), blk.byte_offset(), out.allocation(),
                                  out.byte_offset() + at * sizeof(float), blk.size_bytes());
        blk.after_device_use(f, usage::read);
        out.after_device_use(f, usage::write);
        at += sizes[i];
    }
    const std::vector<float> got = out.to_vector();
    at = 0;
    for (std::size_t i = 0; i < blocks; ++i)
        for (std::size_t j = 0; j < sizes[i]; ++j, ++at) ASSERT_EQ(got[at], value(i, j)) << "block " << i << " element " << j;
    EXPECT_GT(s.stats().segments_closed, 20u);
}

TEST_F(gl_test, StreamSegmentsCloseOnlyOnTheContextThread) {
    upload_stream<gl_backend> s(gpu(), 1024, 2);
    (void)s.push<float>(256);  // the segment is full: the next push must insert a GL fence
    std::error_code thrown, returned;
    std::string why;
    std::thread t([&] {
        try {
            (void)s.push<float>(1);
        } catch (const std::system_error& e) {
            thrown = e.code();
            why = e.what();
        }
        std::error_code ec;
        (void)s.try_push<float>(1, ec);
        returned = ec;
    });
    t.join();
    EXPECT_EQ(thrown, errc::wrong_thread) << why;
    EXPECT_NE(why.find("submitted_fence"), std::string::npos) << why;
    EXPECT_EQ(returned, errc::wrong_thread);
    auto b = s.push<float>(1);  // on the context thread it goes on
    EXPECT_EQ(b.segment(), 1u);
}

} // namespace
