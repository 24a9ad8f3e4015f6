// Host-backend benchmarks: what the policy layer itself costs, without a GPU.
//   - writing through write_only_view / std::span / plain memcpy into the same memory;
//   - the lazy state machine's bookkeeping per host write + device use;
//   - a fenced round trip (host write -> CPU "dispatch" -> host read) on the host backend.
// Run: unibuf-bench-host --benchmark_out=host.json --benchmark_out_format=json
#include <unibuf/unibuf.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

using namespace unibuf;

namespace {

host_backend& dev() {
    static host_backend b;
    return b;
}

void bm_memcpy_baseline(benchmark::State& st) {
    const auto n = static_cast<std::size_t>(st.range(0));
    std::vector<float> src(n, 1.0f), dst(n);
    for (auto _ : st) {
        std::memcpy(dst.data(), src.data(), n * sizeof(float));
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n * sizeof(float)));
}

void bm_write_only_view_assign(benchmark::State& st) {
    const auto n = static_cast<std::size_t>(st.range(0));
    std::vector<float> src(n, 1.0f);
    basic_buffer<float, host_backend, access::write_only, coherence::write_combined, placement::host, sync::none> b(dev(), n);
    for (auto _ : st) {
        b.view().assign(src);
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n * sizeof(float)));
}

void bm_write_only_view_elementwise(benchmark::State& st) {
    const auto n = static_cast<std::size_t>(st.range(0));
    basic_buffer<float, host_backend, access::write_only, coherence::write_combined, placement::host, sync::none> b(dev(), n);
    for (auto _ : st) {
        auto v = b.view();
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n * sizeof(float)));
}

void bm_span_elementwise(benchmark::State& st) {
    const auto n = static_cast<std::size_t>(st.range(0));
    basic_buffer<float, host_backend, access::read_write, placement::host, sync::none> b(dev(), n);
    for (auto _ : st) {
        auto v = b.view();
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n * sizeof(float)));
}

void bm_lazy_bookkeeping(benchmark::State& st) {
    // One host write + one device-use notification per iteration, zero-copy coherent memory:
    // measures the state machine and fence bookkeeping, not data movement.
    shared_buffer<float, host_backend> b(dev(), 16);
    const std::vector<float> one{1.0f};
    for (auto _ : st) {
        b.write(one, 0);
        b.before_device_use(usage::read);
        b.after_device_use(host_backend::fence{}, usage::read);
    }
}

void bm_fenced_round_trip(benchmark::State& st) {
    const auto n = static_cast<std::size_t>(st.range(0));
    basic_buffer<float, host_backend, placement::host, sync::fenced> b(dev(), n);
    const std::vector<float> src(n, 1.0f);
    std::vector<float> out(n);
    host_kernel inc = [](const host_invocation& in) {
        for (auto& x : in.as<float>(0)) x += 1.0f;
    };
    for (auto _ : st) {
        b.write(src);
        unibuf::dispatch(dev(), inc, {1, 1, 1}, {}, bind(b));
        b.read(out);
        benchmark::DoNotOptimize(out.data());
    }
}

} // namespace

BENCHMARK(bm_memcpy_baseline)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(bm_write_only_view_assign)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(bm_write_only_view_elementwise)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(bm_span_elementwise)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(bm_lazy_bookkeeping);
BENCHMARK(bm_fenced_round_trip)->Arg(1024)->UseRealTime();

BENCHMARK_MAIN();
