// unibuf-example-gl-conv2d-zero-copy: one conv2d on OpenGL, fed and read two ways, with the bytes
// the CPU copies counted and both timed.
//
//   A (unibuf, zero-copy): input, weights, bias and output are unibuf GL buffers with persistent
//     mapping (upload_buffer: host write-only, write-combined, coherent mapping; readback_buffer:
//     host read-only, coherent mapping of cached system memory). Each frame is produced straight
//     into the mapped input through write_scope(), unibuf::conv2d runs, and the output is read
//     through the mapped view: no memcpy, no glBufferData, no glGetBufferSubData.
//   B (traditional GL, what most code does today): plain GL buffers (glGenBuffers). Each frame is
//     produced into the application's own memory, uploaded with glBufferData, the same compiled
//     conv2d program (conv.kernel().program()) is bound by hand (glUseProgram, glBindBufferBase,
//     glDispatchCompute with conv.tiling().groups) and the output comes back with
//     glGetBufferSubData. Same shader, same tiling: the two paths differ only in how bytes move.
//
// Bytes copied by the CPU are counted where they are copied: every glBufferData /
// glGetBufferSubData of path B goes through one counting helper; for path A a buffer whose host
// view is not the GL buffer's own persistent mapping (staged or shadow mode, e.g. under
// gl_backend::options::force_traditional) would add its bytes too, so the 0 printed for A is
// what the allocations report, not an assumption. (On a discrete GPU a mapped buffer may sit in
// system memory that the shader reads over the bus: the counts are of CPU copies only.)
// Both outputs are checked every frame against the CPU reference (conv2d_reference) within
// conv2d_fp32_tolerance; the program fails otherwise, and on any GL debug error. Times are
// steady_clock medians of the frames; frames of A and B alternate so that both see the same
// machine load.
//
// Usage: unibuf-example-gl-conv2d-zero-copy [--large] [--frames N] [--force-traditional]
//   default: 1x3x120x160 -> 16 channels (small enough for llvmpipe under ASan in CI);
//   --large: 1x3x720x1280 -> 16 channels; --frames N: frames per path (1 to 10000, default 8);
//   --force-traditional: path A's backend without persistent mapping (shadow copies), to see
//   its copies counted.
#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/opengl.hpp>
#include <unibuf/ops/conv2d/reference.hpp>
#include <unibuf/unibuf.hpp>

#if defined(UNIBUF_EXAMPLE_KEEP_DRIVER_LOADED)  // set by CMake in ASan builds only; not needed in your code
#  include "../../test/opengl/keep_libraries.hpp"
#endif

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

// The value of element i of frame f: a cheap deterministic pattern in [-1, 1), standing in for what
// a camera or a decoder delivers. Both paths produce the same frames with it.
float pixel(std::uint32_t frame, std::size_t i) {
    std::uint32_t x = static_cast<std::uint32_t>(i) * 2654435761u ^ (frame + 1u) * 40503u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return static_cast<float>(x & 0xffffu) / 32768.0f - 1.0f;
}

// Writes frame `frame` into `dst` (a std::span, or a unibuf write scope: only assignments).
template <class Dst>
void produce_frame(std::uint32_t frame, Dst& dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = pixel(frame, i);
}

// What the application does with an output frame: reads all of it (here, a checksum).
double consume(std::span<const float> out) {
    double s = 0;
    for (float v : out) s += v;
    return s;
}

// Bytes the CPU copies between host memory and GL buffers, and the calls that copy them.
struct copy_count {
    std::uint64_t bytes = 0;
    std::uint64_t calls = 0;
};

// Path B's only way to move bytes: every glBufferData / glGetBufferSubData is counted here.
void upload(GLuint buffer, std::span<const float> src, copy_count& c) {
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, buffer);
    glBufferData(GL_SHADER_STORAGE_BUFFER, static_cast<GLsizeiptr>(src.size_bytes()), src.data(), GL_STREAM_DRAW);
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, 0);
    c.bytes += src.size_bytes();
    ++c.calls;
}
void readback(GLuint buffer, std::span<float> dst, copy_count& c) {
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, buffer);
    glGetBufferSubData(GL_SHADER_STORAGE_BUFFER, 0, static_cast<GLsizeiptr>(dst.size_bytes()), dst.data());
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, 0);
    c.bytes += dst.size_bytes();
    ++c.calls;
}

// Path A: the bytes unibuf copies to make `n` bytes of a buffer's host view reach the GL buffer
// kernels bind (or come back): none when the view is that buffer's persistent mapping (a flush
// there is no copy), all of them for a staged or shadow allocation.
template <class Buf>
void count_unibuf_copy(const Buf& b, std::uint64_t n, copy_count& c) {
    if (b.allocation().mode() != unibuf::gl_storage_mode::persistent) {
        c.bytes += n;
        ++c.calls;
    }
}

// Plain GL buffer names, deleted at scope exit (path B).
struct plain_gl_buffers {
    GLuint names[4] = {};
    plain_gl_buffers() { glGenBuffers(4, names); }
    ~plain_gl_buffers() { glDeleteBuffers(4, names); }
    plain_gl_buffers(const plain_gl_buffers&) = delete;
    plain_gl_buffers& operator=(const plain_gl_buffers&) = delete;
};

// Checks `got` against the reference `want` (with its magnitudes) within the fp32 bound; returns
// the largest absolute error, counts the outputs outside the bound in `bad`.
double max_error(const unibuf::conv2d_desc& d, std::span<const float> got, std::span<const float> want,
                 std::span<const float> magnitude, std::size_t& bad) {
    double worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double e = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
        worst = std::max(worst, e);
        bad += e > unibuf::conv2d_fp32_tolerance(d, magnitude[i]);
    }
    return worst;
}

double median_ms(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 != 0 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

template <class Buf>
void show(const char* name, const Buf& b) {
    const auto& plan = b.allocation().plan();
    std::printf("  %-8s %-10s storage 0x%04x  %s\n", name, std::string(unibuf::to_string(plan.mode)).c_str(),
                plan.mode == unibuf::gl_storage_mode::staged ? plan.staging_storage_flags : plan.storage_flags,
                b.report().reason.c_str());
}

struct settings {
    unibuf::conv2d_desc desc;
    std::uint32_t frames = 8;
    bool force_traditional = false;
};

// Parses the command line; false (with a message) on a bad argument.
bool parse(int argc, char** argv, settings& s) {
    s.desc.n = 1;
    s.desc.c = 3;
    s.desc.h = 120;
    s.desc.w = 160;
    s.desc.k = 16;
    s.desc.r = s.desc.s = 3;
    s.desc.pad(1);
    s.desc.bias = true;
    s.desc.relu = true;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--large") {
            s.desc.h = 720;
            s.desc.w = 1280;
        } else if (a == "--force-traditional") {
            s.force_traditional = true;
        } else if (a == "--frames" && i + 1 < argc) {
            const std::string_view v = argv[++i];
            std::uint32_t f = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), f);
            if (ec != std::errc{} || end != v.data() + v.size() || f < 1 || f > 10000) {
                std::fprintf(stderr, "--frames %.*s: give a whole number from 1 to 10000\n", static_cast<int>(v.size()),
                             v.data());
                return false;
            }
            s.frames = f;
        } else {
            std::fprintf(stderr, "unknown argument '%.*s'\nusage: %s [--large] [--frames N] [--force-traditional]\n",
                         static_cast<int>(a.size()), a.data(), argv[0]);
            return false;
        }
    }
    return true;
}

} // namespace

int main(int argc, char** argv) try {
    settings cfg;
    if (!parse(argc, argv, cfg)) return 2;
    const unibuf::conv2d_desc& d = cfg.desc;

    unibuf::egl_context::options ctx_options;
    ctx_options.debug = true;  // every GL_DEBUG_TYPE_ERROR is collected and fails the program
    unibuf::egl_context ctx(ctx_options);
    unibuf::gl_debug_log gl_log;
#if defined(UNIBUF_EXAMPLE_KEEP_DRIVER_LOADED)
    unibuf_test::keep_driver_libraries_loaded();  // LeakSanitizer then sees the driver's globals at exit
#endif
    std::printf("context: %s\n", ctx.description().c_str());
    unibuf::gl_backend::options gpu_options;
    gpu_options.force_traditional = cfg.force_traditional;
    unibuf::gl_backend gpu(gpu_options);

    // The operator: description checked, tiling chosen for this context, GLSL compiled once.
    unibuf::conv2d<unibuf::gl_backend> conv(gpu, d);
    const unibuf::conv2d_sizes z = conv.sizes();
    // Element counts are below 2^32 (conv2d_validate), so byte counts fit easily in 64 bits.
    const std::size_t n_in = z.input, n_wt = z.weights, n_bias = z.bias, n_out = z.output;
    std::printf("conv2d %s\n  output %s, tiling %s, %s\n", d.to_string().c_str(), z.out.to_string().c_str(),
                conv.tiling().to_string().c_str(), conv.precision().to_string().c_str());

    // Weights and bias: fixed, small values (the same for both paths).
    std::vector<float> host_wt(n_wt), host_bias(n_bias);
    for (std::size_t i = 0; i < n_wt; ++i) host_wt[i] = 0.25f * pixel(1000u, i);
    for (std::size_t i = 0; i < n_bias; ++i) host_bias[i] = 0.1f * static_cast<float>(i % 5) - 0.2f;

    // ---- path A: unibuf buffers with persistent mapping
    unibuf::upload_buffer<float, unibuf::gl_backend> a_in(gpu, n_in), a_wt(gpu, n_wt), a_bias(gpu, n_bias);
    unibuf::readback_buffer<float, unibuf::gl_backend> a_out(gpu, n_out);
    std::printf("path A buffers (unibuf):\n");
    show("input", a_in);
    show("weights", a_wt);
    show("bias", a_bias);
    show("output", a_out);
    copy_count a_setup, a_frames, b_setup, b_frames;
    {   // written where the GPU reads them: the write scope's view is the mapping
        auto w = a_wt.write_scope();
        for (std::size_t i = 0; i < n_wt; ++i) w[i] = host_wt[i];
        auto b = a_bias.write_scope();
        for (std::size_t i = 0; i < n_bias; ++i) b[i] = host_bias[i];
    }
    count_unibuf_copy(a_wt, n_wt * sizeof(float), a_setup);
    count_unibuf_copy(a_bias, n_bias * sizeof(float), a_setup);

    // ---- path B: plain GL buffers, the same program
    plain_gl_buffers b_buf;
    const GLuint b_in = b_buf.names[0], b_wt = b_buf.names[1], b_bias = b_buf.names[2], b_out = b_buf.names[3];
    std::vector<float> host_in(n_in), host_out(n_out);
    upload(b_wt, host_wt, b_setup);
    upload(b_bias, host_bias, b_setup);
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, b_out);
    glBufferData(GL_SHADER_STORAGE_BUFFER, static_cast<GLsizeiptr>(n_out * sizeof(float)), nullptr, GL_STREAM_READ);
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, 0);
    const unibuf::dispatch_size groups = conv.tiling().groups;
    const auto& max_groups = gpu.capabilities().max_groups;
    if (groups.x > max_groups[0] || groups.y > max_groups[1] || groups.z > max_groups[2])
        unibuf::throw_error(unibuf::errc::unsupported,
                            "path B: " + std::to_string(groups.x) + "x" + std::to_string(groups.y) + "x" +
                                std::to_string(groups.z) + " work groups exceed GL_MAX_COMPUTE_WORK_GROUP_COUNT " +
                                std::to_string(max_groups[0]) + "x" + std::to_string(max_groups[1]) + "x" +
                                std::to_string(max_groups[2]) + " (unibuf splits such dispatches; this plain path does not)");
    const GLuint program = conv.kernel().program();
    // gl_kernel adds a group-base uniform for dispatches split above the group-count limit
    // (backend/gl/glsl_rewrite.hpp); one glDispatchCompute runs with base 0.
    if (const GLint base = glGetUniformLocation(program, "unibuf_group_base"); base >= 0)
        glProgramUniform3ui(program, base, 0, 0, 0);

    std::vector<float> want(n_out), magnitude(n_out);
    std::vector<double> a_ms, b_ms;
    double a_err = 0, b_err = 0, a_sum = 0, b_sum = 0;
    std::size_t a_bad = 0, b_bad = 0;
    for (std::uint32_t f = 0; f < cfg.frames; ++f) {
        // A: produce into the mapping, convolve, read the mapping.
        auto t0 = steady::now();
        {
            auto w = a_in.write_scope();  // waits for the previous frame's conv2d to finish reading
            produce_frame(f, w, n_in);
        }                                  // coherent mapping: the end of the scope copies nothing
        conv(a_in, a_wt, a_bias, a_out);
        const std::span<const float> a_view = a_out.view();  // waits for the conv2d's fence
        a_sum = consume(a_view);
        auto t1 = steady::now();
        a_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        count_unibuf_copy(a_in, n_in * sizeof(float), a_frames);
        count_unibuf_copy(a_out, n_out * sizeof(float), a_frames);

        // B: produce into host memory, glBufferData, dispatch, glGetBufferSubData.
        t0 = steady::now();
        produce_frame(f, host_in, n_in);
        upload(b_in, host_in, b_frames);
        glUseProgram(program);
        const GLuint bound[4] = {b_in, b_wt, b_bias, b_out};
        for (GLuint i = 0; i < 4; ++i) glBindBufferBase(GL_SHADER_STORAGE_BUFFER, i, bound[i]);
        glDispatchCompute(groups.x, groups.y, groups.z);
        glMemoryBarrier(GL_BUFFER_UPDATE_BARRIER_BIT);  // the shader's writes before glGetBufferSubData
        readback(b_out, host_out, b_frames);            // waits for the dispatch
        b_sum = consume(host_out);
        t1 = steady::now();
        b_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());

        // Both against the CPU reference of this frame (host_in holds it), outside the timing.
        unibuf::conv2d_reference(d, host_in, host_wt, host_bias, want, magnitude);
        a_err = std::max(a_err, max_error(d, a_out.view(), want, magnitude, a_bad));
        b_err = std::max(b_err, max_error(d, host_out, want, magnitude, b_bad));
    }

    const double frame_bytes = static_cast<double>((n_in + n_out) * sizeof(float));
    std::printf("\n%u frames per path, alternating; a frame = produce the input, convolve, read the whole output\n"
                "(one frame moves %.0f bytes of input and output between host and GL)\n\n",
                cfg.frames, frame_bytes);
    std::printf("| path | CPU copies / frame | bytes copied / frame | setup bytes copied | median frame ms | max abs error |\n");
    std::printf("|---|---|---|---|---|---|\n");
    std::printf("| A unibuf, %s | %.1f | %.0f | %llu | %.3f | %.3g |\n",
                cfg.force_traditional ? "force_traditional (shadow copies)" : "persistent mapping",
                static_cast<double>(a_frames.calls) / cfg.frames, static_cast<double>(a_frames.bytes) / cfg.frames,
                static_cast<unsigned long long>(a_setup.bytes), median_ms(a_ms), a_err);
    std::printf("| B glBufferData + glGetBufferSubData | %.1f | %.0f | %llu | %.3f | %.3g |\n",
                static_cast<double>(b_frames.calls) / cfg.frames, static_cast<double>(b_frames.bytes) / cfg.frames,
                static_cast<unsigned long long>(b_setup.bytes), median_ms(b_ms), b_err);
    std::printf("\nlast frame's checksum: A %.6g, B %.6g\n", a_sum, b_sum);
    std::printf("(times are of this run on this machine and driver)\n");

    bool ok = true;
    if (a_bad != 0 || b_bad != 0) {
        std::printf("WRONG: outputs outside the fp32 bound: A %zu, B %zu\n", a_bad, b_bad);
        ok = false;
    }
    if (a_frames.bytes != 0 && !cfg.force_traditional) {
        std::printf("path A copied bytes: a buffer is not persistent-mapped on this context (see the modes above)\n");
        ok = false;
    }
    for (const auto& m : gl_log.take_errors()) {
        std::printf("GL error: %s\n", unibuf::gl_debug_log::describe(m).c_str());
        ok = false;
    }
    std::printf("%s\n", ok ? "both paths match the CPU reference" : "FAILED");
    return ok ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "unibuf-example-gl-conv2d-zero-copy: %s\n", e.what());
    return 1;
}
