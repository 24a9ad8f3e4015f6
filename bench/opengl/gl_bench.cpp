// OpenGL backend benchmarks (Google Benchmark; JSON with --benchmark_out=<file> --benchmark_out_format=json).
//
//   upload/persistent/bytes:B/batch:K      a streaming upload through unibuf: upload_buffer::write()
//                               into a persistent-mapped slot of a ring (fences per group of K slots)
//   upload/buffer_sub_data/bytes:B/batch:K the same ring with plain GL buffers and glBufferSubData
//   upload/persistent_parallel/bytes:B     batch 1, the slot filled by up to 8 writer threads through
//                               gl_parallel_writes (what glBufferSubData cannot do: it copies on the
//                               context thread)
//   latency/<path>              small update (4 KiB) + saxpy dispatch + readback of the 4 KiB result,
//                               per iteration; counters p50_us / p99_us; path = persistent | traditional
//                               (gl_backend::options::force_traditional: glBufferSubData / glGetBufferSubData)
//   fence_round_trip            glFenceSync + glClientWaitSync on an idle context; p50_us / p99_us
//   frame/stream/bytes:B        one iteration = one frame of K uploads of B bytes (K = clamp(16 MiB / B,
//                               1, 1024)) through unibuf's upload_stream: one persistent-mapped ring of
//                               4 segments of max(B, 4 MiB), a fence per segment; the frame ends with
//                               one fence + wait, so all data has arrived inside the timing
//   frame/buffer_sub_data/bytes:B  the same frame with glNamedBufferSubData at offsets k*B of one
//                               glBufferStorage(GL_DYNAMIC_STORAGE_BIT) buffer; no fence but the frame's
//   frame_dispatch/<path>/bytes:B  the same frames, each upload then read by a one-group dispatch
//                               (64 words spread over the upload's range), identical GL calls in both
//   Counter s_per_upload = frame time / K (shown in seconds).
//
// A ring slot is reused only after its fence completed (the wait is part of the timing), so neither
// path can run ahead of the GPU. The context is headless EGL (device platform first), not a debug context.
#include <unibuf/backend/gl/egl_context.hpp>
#include <unibuf/opengl.hpp>
#include <unibuf/transfer/upload_stream.hpp>
#include <unibuf/unibuf.hpp>

#include <benchmark/benchmark.h>

#include "../../test/opengl/keep_libraries.hpp"  // LeakSanitizer-clean exit in sanitizer builds

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../common/percentiles.hpp"
#include "../pool/pool_bench.hpp"

namespace {

using namespace unibuf;

/// A tiny consumer: one group of 64 invocations reads 64 words spread over the bound upload and
/// adds them to binding 1 (so the dispatch really depends on the uploaded bytes).
constexpr std::string_view touch_glsl = R"(#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Src { uint src[]; };
layout(std430, binding = 1) buffer Dst { uint dst[]; };
void main() {
    uint i = gl_LocalInvocationID.x;
    uint n = uint(src.length());
    uint stride = max(n / 64u, 1u);
    dst[i] += src[min(i * stride, n - 1u)];
}
)";

struct gl_world {
    egl_context context;
    gl_backend persistent;
    gl_backend traditional{gl_backend::options{.force_traditional = true}};
    gl_kernel saxpy_persistent{persistent, kernels::saxpy_glsl, "saxpy"};
    gl_kernel saxpy_traditional{traditional, kernels::saxpy_glsl, "saxpy"};
    gl_kernel touch{persistent, touch_glsl, "touch"};
};
std::unique_ptr<gl_world> world;

using unibuf_bench::set_percentiles;

void wait_or_fail(benchmark::State& state, gl_backend& gpu, const gl_backend::fence& f) {
    if (!gpu.wait(f, default_wait_timeout)) state.SkipWithError("a fence did not complete within 10 s");
}

// ---- streaming upload ---------------------------------------------------------------------------
//
// A ring of 3 groups of `batch` slots. Iteration i writes slot i; after the last slot of a group
// a fence is inserted and flushed (so it signals in the background, as basic_buffer's fences do:
// it polls each new fence once); before the first slot of a group is rewritten, that group's
// fence from the previous lap is waited for. batch = 1: a fence per upload; batch = 16: many
// small updates per fence, as in a frame.

struct upload_ring {
    std::size_t batch;
    std::vector<gl_backend::fence> fences = std::vector<gl_backend::fence>(3);
    std::size_t i = 0;
    [[nodiscard]] std::size_t slots() const { return 3 * batch; }
    /// Before writing: waits for the slot's group when it starts a lap; returns the slot.
    std::size_t begin(benchmark::State& state, gl_backend& gpu) {
        const std::size_t slot = i % slots();
        if (slot % batch == 0) wait_or_fail(state, gpu, fences[slot / batch]);
        return slot;
    }
    /// After writing: closes the group with a flushed fence.
    void end(gl_backend& gpu) {
        const std::size_t slot = i++ % slots();
        if (slot % batch == batch - 1) {
            fences[slot / batch] = gpu.submitted_fence();
            glFlush();
        }
    }
};

void upload_persistent(benchmark::State& state) {
    gl_backend& gpu = world->persistent;
    const auto bytes = static_cast<std::size_t>(state.range(0));
    upload_ring ring{static_cast<std::size_t>(state.range(1))};
    const std::vector<std::byte> src(bytes, std::byte{0x5a});
    std::vector<upload_buffer<std::byte, gl_backend>> slots;
    for (std::size_t i = 0; i < ring.slots(); ++i) slots.emplace_back(gpu, bytes);
    for (auto _ : state) {
        auto& b = slots[ring.begin(state, gpu)];
        b.write(src);  // memcpy into the mapping; coherent: nothing to flush
        ring.end(gpu);
    }
    wait_or_fail(state, gpu, gpu.submitted_fence());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
    state.SetLabel(std::string(to_string(slots[0].allocation().mode())) + ", " + slots[0].report().reason);
}

void upload_buffer_sub_data(benchmark::State& state) {
    gl_backend& gpu = world->persistent;
    const auto bytes = static_cast<std::size_t>(state.range(0));
    upload_ring ring{static_cast<std::size_t>(state.range(1))};
    const std::vector<std::byte> src(bytes, std::byte{0x5a});
    std::vector<GLuint> slots(ring.slots());
    glCreateBuffers(static_cast<GLsizei>(slots.size()), slots.data());
    for (GLuint b : slots) glNamedBufferStorage(b, static_cast<GLsizeiptr>(bytes), nullptr, GL_DYNAMIC_STORAGE_BIT);
    for (auto _ : state) {
        const GLuint b = slots[ring.begin(state, gpu)];
        glNamedBufferSubData(b, 0, static_cast<GLsizeiptr>(bytes), src.data());
        ring.end(gpu);
    }
    wait_or_fail(state, gpu, gpu.submitted_fence());
    glDeleteBuffers(static_cast<GLsizei>(slots.size()), slots.data());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
    state.SetLabel("glNamedBufferSubData into glBufferStorage(GL_DYNAMIC_STORAGE_BIT)");
}

/// Writer threads kept for the whole benchmark; each round hands every thread one claim.
class writer_pool {
public:
    explicit writer_pool(std::size_t n) {
        for (std::size_t t = 0; t < n; ++t) threads_.emplace_back([this, t] { run(t); });
    }
    ~writer_pool() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    [[nodiscard]] std::size_t size() const { return threads_.size(); }
    /// Runs job(t) on every thread t (returns at once; completion is the batch's finish()).
    void start(std::function<void(std::size_t)> job) {
        {
            std::lock_guard lk(m_);
            job_ = std::move(job);
            ++generation_;
        }
        cv_.notify_all();
    }

private:
    void run(std::size_t t) {
        std::uint64_t seen = 0;
        for (;;) {
            std::function<void(std::size_t)> job;
            {
                std::unique_lock lk(m_);
                cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
                if (stop_) return;
                seen = generation_;
                job = job_;
            }
            job(t);
        }
    }
    std::mutex m_;
    std::condition_variable cv_;
    std::function<void(std::size_t)> job_;
    std::uint64_t generation_ = 0;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

void upload_persistent_parallel(benchmark::State& state) {
    gl_backend& gpu = world->persistent;
    const auto bytes = static_cast<std::size_t>(state.range(0));
    upload_ring ring{1};
    const std::vector<std::byte> src(bytes, std::byte{0x5a});
    using buf = upload_buffer<std::byte, gl_backend>;
    std::vector<buf> slots;
    for (std::size_t i = 0; i < ring.slots(); ++i) slots.emplace_back(gpu, bytes);
    writer_pool pool(std::min<std::size_t>(8, std::max(2u, std::thread::hardware_concurrency())));
    const std::size_t part = (bytes / pool.size() + 63) / 64 * 64;
    for (auto _ : state) {
        auto& b = slots[ring.begin(state, gpu)];
        gl_parallel_writes<buf> batch(b);
        std::vector<std::optional<gl_parallel_writes<buf>::claim>> claims(pool.size());
        for (std::size_t t = 0; t < pool.size(); ++t) {
            const std::size_t off = std::min(bytes, t * part);
            claims[t].emplace(batch.acquire(off, std::min(part, bytes - off)));
        }
        pool.start([&](std::size_t t) {
            auto& c = *claims[t];
            c.view().assign(std::span<const std::byte>(src.data() + c.offset(), c.size()));
            c.publish();
        });
        batch.finish();
        ring.end(gpu);
    }
    wait_or_fail(state, gpu, gpu.submitted_fence());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
    state.SetLabel(std::to_string(pool.size()) + " writer threads through gl_parallel_writes");
}

// ---- frames of uploads: upload_stream vs glBufferSubData -----------------------------------------
//
// The standard streaming technique: one persistent mapping used as a ring, sub-allocated per upload,
// one fence per ring segment, waited only when the ring wraps onto it. glBufferSubData needs no user
// fence (the driver handles the hazard). Both paths end a frame with one fence + wait.

std::size_t frame_uploads(std::size_t bytes) {
    return std::clamp<std::size_t>((std::size_t{16} << 20) / bytes, 1, 1024);
}
constexpr std::size_t frame_stream_segments = 4;
std::uint64_t frame_segment_bytes(std::size_t bytes) { return std::max<std::uint64_t>(bytes, std::uint64_t{4} << 20); }

/// The consumer dispatch of frame_dispatch/*: binding 0 = the upload's range (same calls in both paths).
struct toucher {
    GLuint dst = 0;
    explicit toucher(bool on) {
        if (!on) return;
        glCreateBuffers(1, &dst);
        glNamedBufferStorage(dst, 64 * sizeof(std::uint32_t), nullptr, 0);
        glUseProgram(world->touch.program());
        glBindBufferBase(GL_SHADER_STORAGE_BUFFER, 1, dst);
    }
    ~toucher() {
        if (dst != 0) glDeleteBuffers(1, &dst);
    }
    toucher(const toucher&) = delete;
    toucher& operator=(const toucher&) = delete;
    void operator()(GLuint buffer, std::uint64_t offset, std::uint64_t size) const {
        if (dst == 0) return;
        glUseProgram(world->touch.program());  // the stream's backend may have bound another program
        glBindBufferBase(GL_SHADER_STORAGE_BUFFER, 1, dst);
        glBindBufferRange(GL_SHADER_STORAGE_BUFFER, 0, buffer, static_cast<GLintptr>(offset), static_cast<GLsizeiptr>(size));
        glDispatchCompute(1, 1, 1);
        glMemoryBarrier(GL_SHADER_STORAGE_BARRIER_BIT);
    }
};

void frame_counters(benchmark::State& state, std::size_t uploads, std::size_t bytes) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(uploads * bytes));
    state.counters["uploads_per_frame"] = static_cast<double>(uploads);
    state.counters["s_per_upload"] = benchmark::Counter(static_cast<double>(uploads),
                                                        benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void frame_stream(benchmark::State& state, bool consume) {
    gl_backend& gpu = world->persistent;
    const auto bytes = static_cast<std::size_t>(state.range(0));
    const std::size_t uploads = frame_uploads(bytes);
    const std::vector<std::byte> src(bytes, std::byte{0x5a});
    upload_stream<gl_backend> stream(gpu, frame_segment_bytes(bytes), frame_stream_segments);
    const toucher touch(consume);
    for (auto _ : state) {
        for (std::size_t k = 0; k < uploads; ++k) {
            auto blk = stream.upload(std::span<const std::byte>(src));  // memcpy into the mapping; coherent: no flush
            touch(blk.allocation().buffer(), blk.byte_offset(), blk.size_bytes());
        }
        wait_or_fail(state, gpu, gpu.submitted_fence());
    }
    frame_counters(state, uploads, bytes);
    const auto& st = stream.stats();
    state.counters["segments_closed_per_frame"] = benchmark::Counter(static_cast<double>(st.segments_closed),
                                                                     benchmark::Counter::kAvgIterations);
    state.counters["blocked_waits"] = static_cast<double>(st.blocked_waits);
    state.SetLabel("upload_stream " + std::to_string(frame_stream_segments) + " x " +
                   std::to_string(stream.segment_bytes() >> 20) + " MiB, " + stream.buffer().report().reason);
}

void frame_buffer_sub_data(benchmark::State& state, bool consume) {
    gl_backend& gpu = world->persistent;
    const auto bytes = static_cast<std::size_t>(state.range(0));
    const std::size_t uploads = frame_uploads(bytes);
    const std::vector<std::byte> src(bytes, std::byte{0x5a});
    GLuint buf = 0;
    glCreateBuffers(1, &buf);
    glNamedBufferStorage(buf, static_cast<GLsizeiptr>(uploads * bytes), nullptr, GL_DYNAMIC_STORAGE_BIT);
    {
        const toucher touch(consume);
        for (auto _ : state) {
            for (std::size_t k = 0; k < uploads; ++k) {
                glNamedBufferSubData(buf, static_cast<GLintptr>(k * bytes), static_cast<GLsizeiptr>(bytes), src.data());
                touch(buf, k * bytes, bytes);
            }
            wait_or_fail(state, gpu, gpu.submitted_fence());
        }
    }
    glDeleteBuffers(1, &buf);
    frame_counters(state, uploads, bytes);
    state.SetLabel("glNamedBufferSubData into glBufferStorage(GL_DYNAMIC_STORAGE_BIT)");
}

// ---- small update + dispatch + readback ---------------------------------------------------------

struct saxpy_params {
    float a;
    std::uint32_t n;
};

void latency(benchmark::State& state, bool traditional) {
    gl_backend& gpu = traditional ? world->traditional : world->persistent;
    gl_kernel& k = traditional ? world->saxpy_traditional : world->saxpy_persistent;
    constexpr std::size_t n = 1024;  // 4 KiB of floats
    upload_buffer<float, gl_backend> x(gpu, n);
    basic_buffer<float, gl_backend, access::read_write, coherence::coherent, placement::host, sync::fenced> y(gpu, n);
    y.fill(0.0f);
    std::vector<float> update(n, 1.0f);
    std::vector<float> out(n);
    std::vector<double> us;
    us.reserve(100000);
    const saxpy_params p{1.0f, static_cast<std::uint32_t>(n)};
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        x.write(update);
        unibuf::dispatch(gpu, k, dispatch_size{static_cast<std::uint32_t>(n / 64)}, push_constants(p),
                               bind(x, usage::read), bind(y));
        y.read(out);  // waits for the dispatch's fence, then reads (traditional: glGetBufferSubData)
        const auto t1 = std::chrono::steady_clock::now();
        const double seconds = std::chrono::duration<double>(t1 - t0).count();
        state.SetIterationTime(seconds);
        us.push_back(seconds * 1e6);
        update[0] += 1.0f;
    }
    benchmark::DoNotOptimize(out.data());
    if (out[1] < 1.0f) state.SkipWithError("the dispatch result did not reach the host");
    set_percentiles(state, us);
    state.SetLabel(traditional ? "glBufferSubData/glGetBufferSubData shadow copies" : "persistent-mapped");
}

// ---- fence round trip ---------------------------------------------------------------------------

void fence_round_trip(benchmark::State& state) {
    gl_backend& gpu = world->persistent;
    std::vector<double> us;
    us.reserve(100000);
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto f = gpu.submitted_fence();
        wait_or_fail(state, gpu, f);
        const auto t1 = std::chrono::steady_clock::now();
        const double seconds = std::chrono::duration<double>(t1 - t0).count();
        state.SetIterationTime(seconds);
        us.push_back(seconds * 1e6);
    }
    set_percentiles(state, us);
}

void upload_sizes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"bytes", "batch"});
    for (std::int64_t s = 4 << 10; s <= (std::int64_t{64} << 20); s *= 4) b->Args({s, 1});
    for (std::int64_t s = 4 << 10; s <= (std::int64_t{1} << 20); s *= 4) b->Args({s, 16});
}
void frame_sizes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"bytes"});
    for (std::int64_t s = 4 << 10; s <= (std::int64_t{64} << 20); s *= 4) b->Args({s});
}
void parallel_sizes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"bytes"});
    for (std::int64_t s = 256 << 10; s <= (std::int64_t{64} << 20); s *= 4) b->Args({s});
}

} // namespace

// The pool against fresh opengl allocations of the same size (issue 5), from bench/pool/.
namespace {
struct gl_pool_env {
    using backend = gl_backend;
    static backend& get() { return world->persistent; }
};
} // namespace
UNIBUF_POOL_BENCHMARKS(gl_pool_env, "opengl")

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    try {
        auto w = std::make_unique<gl_world>();
        world = std::move(w);
        unibuf_test::keep_driver_libraries_loaded();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unibuf-bench-opengl: no OpenGL context: %s\n", e.what());
        return 1;
    }
    const auto& caps = world->persistent.capabilities();
    benchmark::AddCustomContext("gl_context", world->context.description());
    benchmark::AddCustomContext("gl_vendor", caps.vendor);
    benchmark::AddCustomContext("gl_renderer", caps.renderer);
    benchmark::AddCustomContext("gl_version", caps.version);

    benchmark::RegisterBenchmark("upload/persistent", upload_persistent)->Apply(upload_sizes)->UseRealTime();
    benchmark::RegisterBenchmark("upload/buffer_sub_data", upload_buffer_sub_data)->Apply(upload_sizes)->UseRealTime();
    benchmark::RegisterBenchmark("upload/persistent_parallel", upload_persistent_parallel)->Apply(parallel_sizes)->UseRealTime();
    benchmark::RegisterBenchmark("frame/stream", [](benchmark::State& s) { frame_stream(s, false); })->Apply(frame_sizes)->UseRealTime();
    benchmark::RegisterBenchmark("frame/buffer_sub_data", [](benchmark::State& s) { frame_buffer_sub_data(s, false); })->Apply(frame_sizes)->UseRealTime();
    benchmark::RegisterBenchmark("frame_dispatch/stream", [](benchmark::State& s) { frame_stream(s, true); })->Apply(frame_sizes)->UseRealTime();
    benchmark::RegisterBenchmark("frame_dispatch/buffer_sub_data", [](benchmark::State& s) { frame_buffer_sub_data(s, true); })->Apply(frame_sizes)->UseRealTime();
    benchmark::RegisterBenchmark("latency/persistent", [](benchmark::State& s) { latency(s, false); })->UseManualTime();
    benchmark::RegisterBenchmark("latency/traditional", [](benchmark::State& s) { latency(s, true); })->UseManualTime();
    benchmark::RegisterBenchmark("fence_round_trip", fence_round_trip)->UseManualTime();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    world.reset();
    return 0;
}
