// The pipeline suite on the host backend (TSan: label concurrency), plus host-only checks.
#include <unibuf/async/pipeline.hpp>
#include <unibuf/backend/host/host_backend.hpp>
#include <unibuf/unibuf.hpp>

#include "pipeline_tests.hpp"

namespace {

struct host_pipeline_env {
    using backend = unibuf::host_backend;
    unibuf::host_backend device;
    unibuf::thread_pool workers{3};

    unibuf::host_backend& dev() { return device; }
    unibuf::host_backend& notifier() { return device; }  // its worker signals completions
    unibuf::thread_pool& stage() { return workers; }
    unibuf::thread_pool& pool() { return workers; }

    /// out = 2 * in, as a host kernel.
    template <class In, class Out>
    std::function<unibuf::host_backend::fence(In&, Out&, std::uint64_t)> gpu() {
        return [this](In& in, Out& out, std::uint64_t) {
            static const unibuf::host_kernel twice = [](const unibuf::host_invocation& inv) {
                auto x = inv.as<float>(0);
                auto y = inv.as<float>(1);
                for (std::size_t i = 0; i < y.size(); ++i) y[i] = 2.0f * x[i];
            };
            return unibuf::dispatch(device, twice, {1}, {}, unibuf::bind(in, unibuf::usage::read),
                                    unibuf::bind(out, unibuf::usage::write));
        };
    }
    template <class T>
    T run(unibuf::task<T> t) {
        return unibuf::sync_wait(std::move(t));
    }
    void expect_clean() { EXPECT_EQ(device.device_error(), ""); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Host, PipelineBehaviour, ::testing::Types<host_pipeline_env>);

// A GPU stage whose fence does not complete within the wait bound: the run fails with a timeout
// naming the frame and the stage, and returns (nothing hangs).
TEST(PipelineHost, DeviceTimeoutNamesFrameAndStage) {
    host_pipeline_env env;
    unibuf_test::gate hold;
    using P = unibuf::pipeline<unibuf::host_backend, 2>;
    unibuf::pipeline_config c;
    c.input_elements = 64;
    c.output_elements = 64;
    c.wait_timeout = std::chrono::milliseconds(50);
    auto inner = env.gpu<P::input_ring::buffer_type, P::output_ring::buffer_type>();
    P p(env.dev(), env.notifier(), env.stage(), env.pool(), c, unibuf_test::write_frame,
        [&](auto& in, auto& out, std::uint64_t k) {
            auto f = inner(in, out, k);
            if (k == 0) return env.device.submit([&] { EXPECT_TRUE(hold.wait()); });  // the "device" hangs
            return f;
        },
        [](std::span<const float>, std::uint64_t) {});
    unibuf_test::expect_error([&] { (void)env.run(p.run(10)); }, unibuf::errc::timeout,
                              {"pipeline: frame 0", "gpu stage (completion)", "did not complete within 50 ms"});
    hold.open();
    EXPECT_TRUE(env.device.wait_idle());
}

TEST(PipelineHost, ReportsTheSlotMemory) {
    host_pipeline_env env;
    unibuf::pipeline<unibuf::host_backend, 2> p(env.dev(), env.notifier(), env.stage(), env.pool(),
                                                unibuf::pipeline_config{16, 16, 1}, unibuf_test::write_frame,
                                                env.gpu<unibuf::upload_buffer<float, unibuf::host_backend>,
                                                        unibuf::readback_buffer<float, unibuf::host_backend>>());
    EXPECT_FALSE(p.input_report().reason.empty());
    EXPECT_FALSE(p.output_report().reason.empty());
    EXPECT_TRUE(p.output_report().zero_copy);
}

} // namespace
