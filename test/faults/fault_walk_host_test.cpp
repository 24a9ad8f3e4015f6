// The fault injection walk (fault_walk.hpp) on the host backend, zero-copy and with every
// placement staged (`host_backend::options::force_staging`), and the injector's own tests.
#include "fault_walk.hpp"

#include "../common/expect_error.hpp"

#include <unibuf/async/sync_wait.hpp>
#include <unibuf/async/thread_pool.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

namespace {

using namespace unibuf;
using namespace unibuf_fault_walk;

const host_kernel twice = [](const host_invocation& in) {
    auto x = in.as<const float>(0);
    auto y = in.as<float>(1);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = 2.0f * x[i];
};

// One host backend per N; its worker thread is the pipeline's notifier (`notify_when_complete`).
struct host_walk_env {
    using backend = host_backend;
    static constexpr const char* variant_name[2] = {"zero_copy", "staged"};
    static constexpr std::size_t scale = 1;

    host_backend backend_;
    std::optional<thread_pool> workers_;  // made for the pipeline only (no extra threads elsewhere)

    host_walk_env(std::shared_ptr<fault_injector> f, bool staged) : backend_(make_options(std::move(f), staged)) {}
    static host_backend::options make_options(std::shared_ptr<fault_injector> f, bool staged) {
        host_backend::options o;
        o.faults = std::move(f);
        o.force_staging = staged;
        return o;
    }

    host_backend& dev() { return backend_; }
    template <class In, class Out>
    host_backend::fence twice(In& in, Out& out) {
        return dispatch(backend_, ::twice, {1}, {}, bind(in, usage::read), bind(out, usage::write));
    }
    host_backend& notifier() { return backend_; }
    thread_pool& pool() {
        if (!workers_) workers_.emplace(2);
        return *workers_;
    }
    thread_pool& stage() { return pool(); }
    template <class T>
    T run(task<T> t) {
        return sync_wait(std::move(t));
    }
    bool idle(std::chrono::nanoseconds b) { return backend_.wait_idle(b); }
    std::uint64_t bytes_in_use() { return backend_.bytes_in_use(); }
    std::string device_error() { return backend_.device_error(); }
    static void expect_clean() {}
};

class FaultWalk : public ::testing::TestWithParam<walk_param> {};

TEST_P(FaultWalk, EveryInjectedFailureIsCleanAndTheWalkEnds) {
    const auto [index, point, staged] = GetParam();
    walk_and_report<host_walk_env>(index, point, staged);
}

INSTANTIATE_TEST_SUITE_P(Host, FaultWalk, walk_params(), walk_name<host_walk_env>);

TEST(FaultInjector, CountsCallsAndFailsTheArmedOneOnce) {
    fault_injector f;
    f.arm(fault_point::submit, 3);
    EXPECT_FALSE(f.hit(fault_point::submit));
    EXPECT_FALSE(f.hit(fault_point::allocate));
    EXPECT_FALSE(f.hit(fault_point::submit));
    std::uint64_t n = 0;
    EXPECT_TRUE(f.hit(fault_point::submit, &n));
    EXPECT_EQ(n, 3u);
    EXPECT_FALSE(f.hit(fault_point::submit)) << "an armed point fails once";
    EXPECT_EQ(f.injected(), 1u);
    EXPECT_EQ(f.calls(fault_point::submit), 4u);
    EXPECT_EQ(f.calls(fault_point::allocate), 1u);
    f.arm(fault_point::wait, 1);
    EXPECT_TRUE(f.armed(fault_point::wait));
    f.disarm();
    EXPECT_FALSE(f.hit(fault_point::wait));
}

TEST(FaultInjector, ALostHostDeviceRefusesEverySubmissionAndNamesTheCall) {
    auto faults = std::make_shared<fault_injector>();
    host_backend::options o;
    o.faults = faults;
    host_backend dev(o);
    readback_buffer<float, host_backend> b(dev, 16);
    faults->arm(fault_point::device_lost, 1);
    unibuf_test::expect_error([&] { (void)dev.submit([] {}); }, errc::device_lost,
                              {"injected fault: device_lost call #1", "a submission of device work"});
    unibuf_test::expect_error([&] { (void)dispatch(dev, twice, {1}, {}, bind(b, usage::read), bind(b, usage::write)); },
                              errc::device_lost, {"a dispatch", "lost"});
}

} // namespace
