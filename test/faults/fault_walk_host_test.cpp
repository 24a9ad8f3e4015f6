// Fault injection walk on the host backend (issue "Reliability", item 2): for each kind of backend
// call (allocate, map, flush, submit, wait, device loss) and each scenario (a buffer's life, pool
// churn, a ring cycle, a producer fill, an upload stream, a pipeline run of a few frames), fail
// the N-th call for N = 1, 2, ... until a run completes with nothing left to inject. At every N:
// - the run either completes with every result right, or throws a std::system_error whose code is
//   the one the fault stands for and whose message names the call (injected faults:
//   "injected fault: <kind> call #N (<what was asked>)"; injected timeouts: the library's own
//   timeout message, which names the wait);
// - nothing leaks: every byte the scenario allocated is back (`bytes_in_use() == 0`), and
//   ASan/LSan watch the rest;
// - nothing hangs: every wait in the scenarios is bounded;
// - the objects that survived the failure are still usable, proved by running the scenario's work
//   on them again with the faults disarmed and checking its results (a lost device instead refuses
//   every submission with errc::device_lost);
// - the pipeline's frame accounting says which frames were not delivered.
#include "../common/expect_error.hpp"

#include <unibuf/async/pipeline.hpp>
#include <unibuf/backend/fault_injection.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace unibuf;
using namespace std::chrono_literals;

constexpr std::array<fault_point, fault_point_count> all_points{fault_point::allocate, fault_point::map,
                                                               fault_point::flush,    fault_point::submit,
                                                               fault_point::wait,     fault_point::device_lost};

// Bounds of every wait in the scenarios: an injected timeout returns at once, so this only ends a
// run that would otherwise hang (and that is a failure of the test).
constexpr auto bound = 5s;

float pattern(std::size_t i, std::uint64_t salt) { return static_cast<float>((i * 7 + salt * 13) % 1000) * 0.25f; }

const host_kernel twice = [](const host_invocation& in) {
    auto x = in.as<const float>(0);
    auto y = in.as<float>(1);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = 2.0f * x[i];
};

// What one run of a scenario did.
struct outcome {
    std::optional<std::system_error> error;  // the first failure, if any
    bool proved = false;                     // the surviving objects were used again successfully
    std::string note;                        // scenario-specific accounting (frames delivered...)
};

// Runs `body` (which may throw); on a system_error, disarms the faults and runs `prove` (the same
// work on the objects that survived; it must succeed, or, after a device loss, refuse with
// errc::device_lost). Any other exception escapes and fails the test.
template <class Body, class Prove>
outcome run_and_prove(fault_injector& f, host_backend& dev, Body&& body, Prove&& prove) {
    outcome o;
    try {
        body();
        return o;
    } catch (const std::system_error& e) {
        o.error = e;
    } catch (const std::logic_error& e) {  // a wrong result: the fault was lost silently
        ADD_FAILURE() << "a wrong result, no error: " << e.what();
        return o;
    }
    f.disarm();
    try {
        prove();
        o.proved = true;
    } catch (const std::logic_error& e) {
        ADD_FAILURE() << "after \"" << o.error->what() << "\" a wrong result: " << e.what();
    } catch (const std::system_error& e) {
        // Only a lost device may refuse further use, and it must say so.
        if (e.code() != make_error_code(errc::device_lost))
            ADD_FAILURE() << "after \"" << o.error->what() << "\" the objects are not usable: " << e.what();
    }
    (void)dev;
    return o;
}

// ---- the scenarios: each builds its objects from `dev`, runs, and proves --------------------------

// A buffer's life: staged device buffer, upload, copy, dispatch, read back, lazy states.
outcome buffer_life(host_backend& dev, fault_injector& f) {
    constexpr std::size_t n = 1000;
    std::optional<upload_buffer<float, host_backend>> up;
    std::optional<device_buffer<float, host_backend>> mid;
    std::optional<readback_buffer<float, host_backend>> out;
    std::vector<float> src(n);
    for (std::size_t i = 0; i < n; ++i) src[i] = pattern(i, 1);
    auto work = [&] {
        if (!up) up.emplace(dev, n);
        if (!mid) mid.emplace(dev, n);
        if (!out) out.emplace(dev, n);
        up->set_wait_timeout(bound);
        mid->set_wait_timeout(bound);
        out->set_wait_timeout(bound);
        up->write(src);
        mid->copy_from(*up);
        (void)dispatch(dev, twice, {1}, {}, bind(*mid, usage::read), bind(*out, usage::write));
        const auto got = out->to_vector();
        for (std::size_t i = 0; i < n; ++i)
            if (got[i] != 2.0f * src[i])
                throw std::logic_error("buffer_life: element " + std::to_string(i) + " is " + std::to_string(got[i]) +
                                       ", expected " + std::to_string(2.0f * src[i]));
        mid->write(std::span<const float>(src).first(10));  // a host write into the staged buffer (lazy state)
        if (mid->to_vector()[3] != src[3]) throw std::logic_error("buffer_life: the staged write did not stick");
    };
    return run_and_prove(f, dev, work, work);
}

// Pool churn: sizes that fragment and reuse the pool's blocks, each acquisition written and read.
outcome pool_churn(host_backend& dev, fault_injector& f) {
    std::optional<buffer_pool<host_backend, access::read_write>> pool;
    auto work = [&] {
        if (!pool) pool.emplace(dev, pool_config::with_bytes(64 << 10));
        for (std::uint64_t round = 0; round < 6; ++round) {
            std::vector<decltype(pool->acquire<float>(1))> live;
            for (std::size_t k = 1; k <= 5; ++k) {
                auto b = pool->acquire<float>(k * 100 + round);
                std::vector<float> v(b.size());
                for (std::size_t i = 0; i < v.size(); ++i) v[i] = pattern(i, round + k);
                b.set_wait_timeout(bound);
                b.write(v);
                if (b.to_vector() != v) throw std::logic_error("pool_churn: a pool buffer read back wrong");
                if (k % 2 == 0) live.push_back(std::move(b));
            }
        }
    };
    return run_and_prove(f, dev, work, work);
}

// A ring cycle: a producer claims, writes and publishes; the "device" reads each slot through a
// dispatch; the consumer releases with that dispatch's fence.
outcome ring_cycle(host_backend& dev, fault_injector& f) {
    using buf = basic_buffer<float, host_backend, access::read_write, coherence::coherent, placement::host, sync::fenced>;
    std::optional<ring<buf, 3>> r;
    std::optional<readback_buffer<float, host_backend>> sums;
    std::uint64_t next = 0;  // the next sequence to check (a failed round is redone on the next claims)
    auto work = [&] {
        if (!r) r.emplace(dev, [&](std::size_t) { return buf(dev, 256); });
        if (!sums) sums.emplace(dev, 256);
        r->set_wait_timeout(bound);
        sums->set_wait_timeout(bound);
        for (int i = 0; i < 8; ++i) {
            auto w = r->claim();
            const std::uint64_t seq = w.sequence();
            std::vector<float> v(256, static_cast<float>(seq));
            w->write(v);
            w.publish();
            auto rd = r->read();
            if (rd.sequence() != seq) throw std::logic_error("ring_cycle: read sequence " + std::to_string(rd.sequence()) + " after writing " + std::to_string(seq));
            const auto fence = dispatch(dev, twice, {1}, {}, bind(*rd, usage::read), bind(*sums, usage::write));
            rd.release(fence);
            if (sums->to_vector()[5] != 2.0f * static_cast<float>(seq)) throw std::logic_error("ring_cycle: wrong device result");
            next = seq + 1;
        }
    };
    auto o = run_and_prove(f, dev, work, work);
    o.note = "ring sequences up to " + std::to_string(next);
    return o;
}

// A producer fill: several writer threads fill a staged device buffer through the pipelined
// staging ring (forced), then the result is read back.
outcome producer_fill(host_backend& dev, fault_injector& f) {
    std::optional<producer<host_backend>> prod;
    std::optional<device_buffer<float, host_backend>> target;
    constexpr std::size_t n = 64 * 1024;
    auto work = [&] {
        produce_options o;
        o.force = produce_path::staged_pipelined;
        o.wait_timeout = bound;
        o.grain_bytes = 4096;
        if (!prod) prod.emplace(dev, 3, o);
        if (!target) target.emplace(dev, n);
        target->set_wait_timeout(bound);
        (void)prod->fill(*target, [](write_only_view<float> out, std::size_t first) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = pattern(first + i, 3);
        });
        const auto got = target->to_vector();
        for (std::size_t i = 0; i < n; ++i)
            if (got[i] != pattern(i, 3)) throw std::logic_error("producer_fill: element " + std::to_string(i) + " wrong");
    };
    return run_and_prove(f, dev, work, work);
}

// An upload stream: many small blocks pushed, each bound to a dispatch that doubles it into a
// result buffer at its own offset; segments recycle.
outcome upload_stream_cycle(host_backend& dev, fault_injector& f) {
    std::optional<upload_stream<host_backend>> s;
    std::optional<readback_buffer<float, host_backend>> out;
    auto work = [&] {
        if (!s) s.emplace(dev, 4096, 3);
        if (!out) out.emplace(dev, 64);
        s->set_wait_timeout(bound);
        out->set_wait_timeout(bound);
        for (std::uint64_t k = 0; k < 20; ++k) {
            std::vector<float> v(64);
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = pattern(i, k);
            auto b = s->upload(std::span<const float>(v));
            (void)dispatch(dev, twice, {1}, {}, bind(b, usage::read), bind(*out, usage::write));
            const auto got = out->to_vector();
            for (std::size_t i = 0; i < v.size(); ++i)
                if (got[i] != 2.0f * v[i]) throw std::logic_error("upload_stream: block " + std::to_string(k) + " read back wrong");
        }
        s->wait_idle();
    };
    return run_and_prove(f, dev, work, work);
}

// A pipeline run of a few frames (2 writers, 3 slots). The frames delivered are checked (index and
// values), and on a failure the statistics must account for every frame.
outcome pipeline_frames(host_backend& dev, fault_injector& f) {
    constexpr std::size_t n = 512;
    constexpr std::uint64_t frames = 6;
    thread_pool workers(2);
    using P = pipeline<host_backend, 3>;
    pipeline_config c;
    c.input_elements = n;
    c.output_elements = n;
    c.writers = 2;
    c.wait_timeout = bound;
    std::vector<std::uint64_t> seen;
    std::optional<P> p;
    auto make = [&] {
        p.emplace(
            dev, dev, workers, workers, c,
            [](write_only_view<float> v, std::uint64_t k) {
                for (std::size_t i = 0; i < v.size(); ++i) v[i] = pattern(i, k);
            },
            [&dev](auto& in, auto& out, std::uint64_t) {
                return dispatch(dev, twice, {1}, {}, bind(in, usage::read), bind(out, usage::write));
            },
            [&seen](std::span<const float> out, std::uint64_t k) {
                for (std::size_t i = 0; i < out.size(); ++i)
                    if (out[i] != 2.0f * pattern(i, k))
                        throw std::logic_error("pipeline: frame " + std::to_string(k) + " element " + std::to_string(i) + " wrong");
                seen.push_back(k);
            });
    };
    pipeline_stats stats{};
    auto work = [&] {
        seen.clear();
        if (!p) make();
        stats = sync_wait(p->run(frames));
        if (seen.size() != frames) throw std::logic_error("pipeline: " + std::to_string(seen.size()) + " frames delivered of " + std::to_string(frames));
        for (std::uint64_t k = 0; k < frames; ++k)
            if (seen[k] != k) throw std::logic_error("pipeline: frame " + std::to_string(seen[k]) + " delivered as number " + std::to_string(k));
    };
    outcome o;
    try {
        work();
        return o;
    } catch (const std::system_error& e) {
        o.error = e;
    }
    // Every frame is accounted for: delivered in order up to the failure, none after it silently.
    for (std::size_t i = 0; i < seen.size(); ++i)
        if (seen[i] != i) ADD_FAILURE() << "frames delivered out of order before the failure: " << o.error->what();
    if (p) {
        const auto s = p->statistics();
        if (s.frames_out != seen.size())
            ADD_FAILURE() << "the statistics count " << s.frames_out << " frames out, the consumer saw " << seen.size();
    }
    o.note = std::to_string(seen.size()) + " of " + std::to_string(frames) + " frames delivered before the failure";
    f.disarm();
    try {  // a pipeline after a failed run: a new one on the same backend runs every frame
        p.reset();
        work();
        o.proved = true;
    } catch (const std::system_error& e) {
        if (e.code() != make_error_code(errc::device_lost))
            ADD_FAILURE() << "after \"" << o.error->what() << "\" a new pipeline does not run: " << e.what();
    }
    return o;
}

// ---- the walk -----------------------------------------------------------------------------------

using scenario = outcome (*)(host_backend&, fault_injector&);

std::error_code expected_code(fault_point p) {
    switch (p) {
        case fault_point::allocate: return make_error_code(errc::out_of_memory);
        case fault_point::map: return make_error_code(errc::mapping_failed);
        case fault_point::flush:
        case fault_point::submit: return make_error_code(errc::out_of_memory);
        case fault_point::wait: return make_error_code(errc::timeout);
        case fault_point::device_lost: return make_error_code(errc::device_lost);
    }
    return {};
}

// Walks one scenario over one fault point; returns how many calls of that kind the scenario makes
// (the N at which nothing was left to inject, minus one).
std::uint64_t walk(const char* name, scenario run, fault_point p, bool staged) {
    for (std::uint64_t n = 1; n < 5000; ++n) {
        SCOPED_TRACE(std::string(name) + ", " + std::string(to_string(p)) + " call #" + std::to_string(n) +
                     (staged ? ", staged" : ""));
        auto faults = std::make_shared<fault_injector>();
        host_backend::options o;
        o.faults = faults;
        o.force_staging = staged;
        host_backend dev(o);
        faults->arm(p, n);
        const outcome out = run(dev, *faults);
        const bool injected = faults->injected() > 0;
        if (p != fault_point::device_lost || faults->injected() == 0) {
            EXPECT_TRUE(dev.wait_idle(bound)) << "device work still queued after the scenario";
        }
        EXPECT_EQ(dev.bytes_in_use(), 0u) << "device memory not returned after the scenario";
        EXPECT_EQ(dev.device_error(), "") << "a device job failed";
        if (!injected) {
            EXPECT_FALSE(out.error) << "a failure without an injected fault: " << out.error->what();
            return n - 1;
        }
        if (out.error) {
            const std::string what = out.error->what();
            EXPECT_EQ(out.error->code(), expected_code(p)) << what;
            if (p == fault_point::wait) {
                EXPECT_NE(what.find("unibuf"), std::string::npos) << what;
            } else if (p == fault_point::device_lost && what.find("injected fault: device_lost call #") == std::string::npos) {
                // The loss seen by another thread first: a wait for work that was queued when the
                // device was lost, or a later submission; the message names that call (and, in the
                // pipeline, the frame and the stage).
                EXPECT_NE(what.find("the device was lost"), std::string::npos) << what;
            } else {
                const std::string call = "injected fault: " + std::string(to_string(p)) + " call #";
                EXPECT_NE(what.find(call), std::string::npos) << what;
                EXPECT_NE(what.find(" ("), std::string::npos) << "the message says what was asked: " << what;
            }
            if (p != fault_point::device_lost) {
                EXPECT_TRUE(out.proved) << "not proved usable after: " << what;
            }
        }
        if (::testing::Test::HasFailure()) return n;  // one broken N is enough to report
    }
    ADD_FAILURE() << name << ": the walk over " << to_string(p) << " did not end in 5000 runs";
    return 0;
}

struct named {
    const char* name;
    scenario run;
};
const named scenarios[] = {{"buffer_life", buffer_life},       {"pool_churn", pool_churn},
                           {"ring_cycle", ring_cycle},         {"producer_fill", producer_fill},
                           {"upload_stream", upload_stream_cycle}, {"pipeline", pipeline_frames}};

class FaultWalk : public ::testing::TestWithParam<std::tuple<int, fault_point, bool>> {};

TEST_P(FaultWalk, EveryInjectedFailureIsCleanAndTheWalkEnds) {
    const auto [index, point, staged] = GetParam();
    const named& s = scenarios[index];
    const std::uint64_t calls = walk(s.name, s.run, point, staged);
    RecordProperty("calls", std::to_string(calls));
    std::printf("[ walk     ] %s, %s%s: %llu call(s) of that kind, each failed once\n", s.name,
                std::string(to_string(point)).c_str(), staged ? " (staged)" : "", static_cast<unsigned long long>(calls));
}

INSTANTIATE_TEST_SUITE_P(Host, FaultWalk,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(scenarios))),
                                            ::testing::ValuesIn(all_points), ::testing::Bool()),
                         [](const auto& info) {
                             return std::string(scenarios[std::get<0>(info.param)].name) + "_" +
                                    std::string(to_string(std::get<1>(info.param))) +
                                    (std::get<2>(info.param) ? "_staged" : "_zero_copy");
                         });

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
