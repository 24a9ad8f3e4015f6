// The workload each context runs in the several-contexts tests (test/vulkan/multi_context_test.cpp,
// test/opengl/gl_multi_context_test.cpp): pool buffers, a ring cycle and a pipeline run on one
// backend object, every result checked against `scale * input`.
#pragma once

#include <unibuf/async/pipeline.hpp>
#include <unibuf/ops/conv2d/conv2d_desc.hpp>
#include <unibuf/unibuf.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace unibuf_test {

/// The input value `i` of data set `salt`.
inline float context_value(std::size_t i, std::uint64_t salt) {
    return static_cast<float>((i * 13 + salt * 7) % 509) * 0.5f;
}

/// The device step of the workload: a 1x1 conv2d of one channel of side x side (out = w * in + b).
inline unibuf::conv2d_desc scale_desc(std::uint32_t side) {
    unibuf::conv2d_desc d;
    d.c = d.k = 1;
    d.h = d.w = side;
    d.r = d.s = 1;
    d.bias = true;
    return d;
}

/// Runs the workload on `b` with buffers of `n` floats; `scaled(in, out)` submits out = scale * in
/// and returns its fence. The pipeline's completions come from `notifier`, its GPU stage runs on
/// `stage`, its writers' and consumer's coroutines on `pool`; `run(task)` runs a task to its end on
/// this thread. Returns the number of wrong values (0 expected).
template <class B, class Scaled, class Notifier, class Stage, class Run>
std::size_t context_workload(B& b, std::size_t n, float scale, std::uint64_t salt, Scaled&& scaled, Notifier& notifier,
                             Stage& stage, unibuf::thread_pool& pool, Run&& run) {
    using namespace unibuf;
    std::size_t wrong = 0;
    // A pool: several buffers from one block, each scaled on the device and read back.
    buffer_pool<B, access::read_write> bufs(b, pool_config::with_bytes(1 << 20));
    for (std::uint64_t round = 0; round < 4; ++round) {
        auto in = bufs.template acquire<float>(n);
        auto out = bufs.template acquire<float>(n);
        std::vector<float> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = context_value(i, salt + round);
        in.write(v);
        (void)scaled(in, out);
        const auto got = out.to_vector();
        for (std::size_t i = 0; i < n; ++i) wrong += got[i] != scale * v[i];
    }
    // A ring: the producer writes slots, the device reads each, the consumer releases with its fence.
    using slot = typename buffer_pool<B, access::read_write>::template buffer<float>;
    ring<slot, 3> r(b, [&](std::size_t) { return bufs.template acquire<float>(n); });
    readback_buffer<float, B> result(b, n);
    for (int i = 0; i < 9; ++i) {
        auto w = r.claim();
        const std::uint64_t seq = w.sequence();
        std::vector<float> v(n);
        for (std::size_t j = 0; j < n; ++j) v[j] = context_value(j, salt + 100 + seq);
        w->write(v);
        w.publish();
        auto rd = r.read();
        rd.release(scaled(*rd, result));
        const auto got = result.to_vector();
        for (std::size_t j = 0; j < n; ++j) wrong += got[j] != scale * v[j];
    }
    // A pipeline: writer threads -> the device -> the consumer, frames checked in order.
    pipeline_config cfg;
    cfg.input_elements = cfg.output_elements = n;
    cfg.writers = 2;
    std::uint64_t expected = 0;
    pipeline<B, 3> p(
        b, notifier, stage, pool, cfg,
        [salt](write_only_view<float> v, std::uint64_t k) {
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = context_value(i, salt + 1000 + k);
        },
        [&scaled](auto& in, auto& out, std::uint64_t) { return scaled(in, out); },
        [&](std::span<const float> out, std::uint64_t k) {
            wrong += k != expected++;
            for (std::size_t i = 0; i < out.size(); ++i) wrong += out[i] != scale * context_value(i, salt + 1000 + k);
        });
    const pipeline_stats st = run(p.run(16));
    wrong += st.frames_out != 16;
    return wrong;
}

} // namespace unibuf_test
