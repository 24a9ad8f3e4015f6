// The fault injection walk (issue "Reliability", item 2), shared by the backends: for each kind of
// backend call (allocate, map, flush, submit, wait, device loss) and each scenario (a buffer's
// life, pool churn, a ring cycle, a producer fill, an upload stream, a pipeline run of a few
// frames), fail the N-th call for N = 1, 2, ... until a run completes with nothing left to inject.
// At every N:
// - the run either completes with every result right, or throws a std::system_error whose code is
//   the one the fault stands for and whose message names the call (injected faults:
//   "injected fault: <kind> call #N (<what was asked>)"; injected timeouts: the library's own
//   timeout message, which names the wait);
// - nothing leaks: every byte the scenario allocated is back (`bytes_in_use() == 0` where the
//   backend keeps accounts), and ASan/LSan watch the rest;
// - nothing hangs: every wait in the scenarios is bounded;
// - the objects that survived the failure are still usable, proved by running the scenario's work
//   on them again with the faults disarmed and checking its results (a lost device instead refuses
//   with errc::device_lost);
// - the pipeline's frame accounting says which frames were not delivered;
// - the backend's own checker stays silent (Vulkan: validation and synchronization validation;
//   OpenGL: no GL_DEBUG_TYPE_ERROR), `Env::expect_clean()` after the backend of that N is gone.
//
// An environment `Env` (one per N, a fresh backend) provides:
//   using backend = ...;                                  the backend type
//   static constexpr const char* variant_name[2];         what `variant` false / true selects
//   Env(std::shared_ptr<unibuf::fault_injector>, bool variant);
//   backend& dev();
//   fence twice(In& in, Out& out);                        device work: out = 2 * in (whole bindings)
//   notifier(), stage(), pool();                          the pipeline's FenceNotifier, GPU stage, writers' pool
//   template <class T> T run(unibuf::task<T>);            runs a task to its end (GL: on the context loop)
//   bool idle(std::chrono::nanoseconds);                  waits (bounded) for all submitted work
//   std::uint64_t bytes_in_use();                         device bytes the backend counts (0: no accounting)
//   std::string device_error();                           a device job's failure ("" where none can fail)
//   static void expect_clean();                           the backend's checker saw nothing
//   static constexpr std::size_t scale;                   sizes of the scenarios divided by this
#pragma once

#include <unibuf/async/pipeline.hpp>
#include <unibuf/backend/fault_injection.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

namespace unibuf_fault_walk {

using namespace unibuf;
using namespace std::chrono_literals;

inline constexpr std::array<fault_point, fault_point_count> all_points{
    fault_point::allocate, fault_point::map,  fault_point::flush,
    fault_point::submit,   fault_point::wait, fault_point::device_lost};

// Bounds of every wait in the scenarios: an injected timeout returns at once, so this only ends a
// run that would otherwise hang (and that is a failure of the test).
inline constexpr auto bound = std::chrono::nanoseconds(5s);

inline float pattern(std::size_t i, std::uint64_t salt) {
    return static_cast<float>((i * 7 + salt * 13) % 1000) * 0.25f;
}

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
outcome run_and_prove(fault_injector& f, Body&& body, Prove&& prove) {
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
    return o;
}

// ---- the scenarios: each builds its objects from the environment's backend, runs, and proves ------

// A buffer's life: staged device buffer, upload, copy, dispatch, read back, lazy states.
template <class Env>
outcome buffer_life(Env& env, fault_injector& f) {
    using B = typename Env::backend;
    constexpr std::size_t n = 1000;
    auto& dev = env.dev();
    std::optional<upload_buffer<float, B>> up;
    std::optional<device_buffer<float, B>> mid;
    std::optional<readback_buffer<float, B>> out;
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
        (void)env.twice(*mid, *out);
        const auto got = out->to_vector();
        for (std::size_t i = 0; i < n; ++i)
            if (got[i] != 2.0f * src[i])
                throw std::logic_error("buffer_life: element " + std::to_string(i) + " is " + std::to_string(got[i]) +
                                       ", expected " + std::to_string(2.0f * src[i]));
        mid->write(std::span<const float>(src).first(10));  // a host write into the staged buffer (lazy state)
        if (mid->to_vector()[3] != src[3]) throw std::logic_error("buffer_life: the staged write did not stick");
    };
    return run_and_prove(f, work, work);
}

// Pool churn: sizes that fragment and reuse the pool's blocks, each acquisition written and read.
template <class Env>
outcome pool_churn(Env& env, fault_injector& f) {
    using B = typename Env::backend;
    auto& dev = env.dev();
    std::optional<buffer_pool<B, access::read_write>> pool;
    auto work = [&] {
        if (!pool) pool.emplace(dev, pool_config::with_bytes(64 << 10));
        for (std::uint64_t round = 0; round < 6 / Env::scale; ++round) {
            std::vector<decltype(pool->template acquire<float>(1))> live;
            for (std::size_t k = 1; k <= 5; ++k) {
                auto b = pool->template acquire<float>(k * 100 + round);
                std::vector<float> v(b.size());
                for (std::size_t i = 0; i < v.size(); ++i) v[i] = pattern(i, round + k);
                b.set_wait_timeout(bound);
                b.write(v);
                if (b.to_vector() != v) throw std::logic_error("pool_churn: a pool buffer read back wrong");
                if (k % 2 == 0) live.push_back(std::move(b));
            }
        }
    };
    return run_and_prove(f, work, work);
}

// A ring cycle: a producer claims, writes and publishes; the device reads each slot through a
// dispatch; the consumer releases with that dispatch's fence.
template <class Env>
outcome ring_cycle(Env& env, fault_injector& f) {
    using B = typename Env::backend;
    using buf = basic_buffer<float, B, access::read_write, coherence::coherent, placement::host, sync::fenced>;
    auto& dev = env.dev();
    std::optional<ring<buf, 3>> r;
    std::optional<readback_buffer<float, B>> sums;
    std::uint64_t next = 0;  // the next sequence to check (a failed round is redone on the next claims)
    auto work = [&] {
        if (!r) r.emplace(dev, [&](std::size_t) { return buf(dev, 256); });
        if (!sums) sums.emplace(dev, 256);
        r->set_wait_timeout(bound);
        sums->set_wait_timeout(bound);
        for (std::size_t i = 0; i < 8 / Env::scale; ++i) {
            auto w = r->claim();
            const std::uint64_t seq = w.sequence();
            std::vector<float> v(256, static_cast<float>(seq));
            w->write(v);
            w.publish();
            auto rd = r->read();
            if (rd.sequence() != seq)
                throw std::logic_error("ring_cycle: read sequence " + std::to_string(rd.sequence()) + " after writing " +
                                       std::to_string(seq));
            const auto fence = env.twice(*rd, *sums);
            rd.release(fence);
            if (sums->to_vector()[5] != 2.0f * static_cast<float>(seq))
                throw std::logic_error("ring_cycle: wrong device result");
            next = seq + 1;
        }
    };
    auto o = run_and_prove(f, work, work);
    o.note = "ring sequences up to " + std::to_string(next);
    return o;
}

// A producer fill: several writer threads fill a staged device buffer through the pipelined
// staging ring (forced), then the result is read back.
template <class Env>
outcome producer_fill(Env& env, fault_injector& f) {
    using B = typename Env::backend;
    auto& dev = env.dev();
    std::optional<producer<B>> prod;
    std::optional<device_buffer<float, B>> target;
    constexpr std::size_t n = 64 * 1024 / Env::scale;
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
    return run_and_prove(f, work, work);
}

// An upload stream: many small blocks pushed, each bound to a dispatch that doubles it into a
// result buffer; segments recycle.
template <class Env>
outcome upload_stream_cycle(Env& env, fault_injector& f) {
    using B = typename Env::backend;
    auto& dev = env.dev();
    std::optional<upload_stream<B>> s;
    std::optional<readback_buffer<float, B>> out;
    auto work = [&] {
        if (!s) s.emplace(dev, 4096, 3);
        if (!out) out.emplace(dev, 64);
        s->set_wait_timeout(bound);
        out->set_wait_timeout(bound);
        for (std::uint64_t k = 0; k < 20 / Env::scale; ++k) {
            std::vector<float> v(64);
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = pattern(i, k);
            auto b = s->upload(std::span<const float>(v));
            (void)env.twice(b, *out);
            const auto got = out->to_vector();
            for (std::size_t i = 0; i < v.size(); ++i)
                if (got[i] != 2.0f * v[i])
                    throw std::logic_error("upload_stream: block " + std::to_string(k) + " read back wrong");
        }
        s->wait_idle();
    };
    return run_and_prove(f, work, work);
}

// A pipeline run of a few frames (2 writers, 3 slots). The frames delivered are checked (index and
// values), and on a failure the statistics must account for every frame.
template <class Env>
outcome pipeline_frames(Env& env, fault_injector& f) {
    using B = typename Env::backend;
    constexpr std::size_t n = 512 / Env::scale;
    constexpr std::uint64_t frames = 6;
    using P = pipeline<B, 3>;
    pipeline_config c;
    c.input_elements = n;
    c.output_elements = n;
    c.writers = 2;
    c.wait_timeout = bound;
    std::vector<std::uint64_t> seen;
    std::optional<P> p;
    auto make = [&] {
        p.emplace(
            env.dev(), env.notifier(), env.stage(), env.pool(), c,
            [](write_only_view<float> v, std::uint64_t k) {
                for (std::size_t i = 0; i < v.size(); ++i) v[i] = pattern(i, k);
            },
            [&env](auto& in, auto& out, std::uint64_t) { return env.twice(in, out); },
            [&seen](std::span<const float> out, std::uint64_t k) {
                for (std::size_t i = 0; i < out.size(); ++i)
                    if (out[i] != 2.0f * pattern(i, k))
                        throw std::logic_error("pipeline: frame " + std::to_string(k) + " element " +
                                               std::to_string(i) + " wrong");
                seen.push_back(k);
            });
    };
    auto work = [&] {
        seen.clear();
        if (!p) make();
        (void)env.run(p->run(frames));
        if (seen.size() != frames)
            throw std::logic_error("pipeline: " + std::to_string(seen.size()) + " frames delivered of " +
                                   std::to_string(frames));
        for (std::uint64_t k = 0; k < frames; ++k)
            if (seen[k] != k)
                throw std::logic_error("pipeline: frame " + std::to_string(seen[k]) + " delivered as number " +
                                       std::to_string(k));
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

inline std::error_code expected_code(fault_point p) {
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

template <class Env>
using scenario = outcome (*)(Env&, fault_injector&);

template <class Env>
struct named {
    const char* name;
    scenario<Env> run;
};

inline constexpr const char* scenario_names[] = {"buffer_life", "pool_churn", "ring_cycle",
                                                 "producer_fill", "upload_stream", "pipeline"};
inline constexpr int scenario_count = 6;

template <class Env>
named<Env> scenario_at(int i) {
    constexpr scenario<Env> runs[] = {buffer_life<Env>,   pool_churn<Env>,          ring_cycle<Env>,
                                      producer_fill<Env>, upload_stream_cycle<Env>, pipeline_frames<Env>};
    return {scenario_names[i], runs[i]};
}

// One run of scenario `s` on a fresh environment with the `n`-th call of kind `p` failing, every
// check of the file comment made; true when the fault was injected (the scenario made n calls).
template <class Env>
bool run_at(const named<Env>& s, fault_point p, bool variant, std::uint64_t n) {
    SCOPED_TRACE(std::string(s.name) + ", " + std::string(to_string(p)) + " call #" + std::to_string(n) + ", " +
                 Env::variant_name[variant ? 1 : 0]);
    auto faults = std::make_shared<fault_injector>();
    bool injected = false;
    {
        Env env(faults, variant);
        faults->arm(p, n);
        const outcome out = s.run(env, *faults);
        injected = faults->injected() > 0;
        faults->disarm();  // the checks below are the test's, not the scenario's
        if (p != fault_point::device_lost || !injected) {
            EXPECT_TRUE(env.idle(bound)) << "device work still queued after the scenario";
        }
        EXPECT_EQ(env.bytes_in_use(), 0u) << "device memory not returned after the scenario";
        EXPECT_EQ(env.device_error(), "") << "a device job failed";
        if (!injected) {
            EXPECT_FALSE(out.error) << "a failure without an injected fault: " << out.error->what();
        } else if (out.error) {
            const std::string what = out.error->what();
            EXPECT_EQ(out.error->code(), expected_code(p)) << what;
            if (p == fault_point::wait) {
                EXPECT_NE(what.find("unibuf"), std::string::npos) << what;
            } else if (p == fault_point::device_lost &&
                       what.find("injected fault: device_lost call #") == std::string::npos) {
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
    }
    Env::expect_clean();  // after the backend of this N is gone (its destruction included)
    return injected;
}

// Walks one scenario over one fault point; returns how many calls of that kind the scenario makes
// (the N at which nothing was left to inject, minus one). A wait is counted only where its fence
// is not complete yet, which depends on timing: the walk over waits ends only after three runs in
// a row made fewer than N of them.
template <class Env>
std::uint64_t walk(const named<Env>& s, fault_point p, bool variant) {
    for (std::uint64_t n = 1; n < 5000; ++n) {
        bool injected = run_at(s, p, variant, n);
        for (int again = 0; !injected && p == fault_point::wait && again < 2 && !::testing::Test::HasFailure(); ++again)
            injected = run_at(s, p, variant, n);
        if (!injected) return n - 1;
        if (::testing::Test::HasFailure()) return n;  // one broken N is enough to report
    }
    ADD_FAILURE() << s.name << ": the walk over " << to_string(p) << " did not end in 5000 runs";
    return 0;
}

template <class Env>
void walk_and_report(int index, fault_point point, bool variant) {
    const named<Env> s = scenario_at<Env>(index);
    const std::uint64_t calls = walk<Env>(s, point, variant);
    ::testing::Test::RecordProperty("calls", std::to_string(calls));
    std::printf("[ walk     ] %s, %s (%s): %llu call(s) of that kind, each failed once\n", s.name,
                std::string(to_string(point)).c_str(), Env::variant_name[variant ? 1 : 0],
                static_cast<unsigned long long>(calls));
}

using walk_param = std::tuple<int, fault_point, bool>;

// The parameters of a walk suite: every scenario, every point, both variants of `Env`.
inline auto walk_params() {
    return ::testing::Combine(::testing::Range(0, scenario_count), ::testing::ValuesIn(all_points),
                              ::testing::Bool());
}

// The name of one walk: scenario_point_variant.
template <class Env>
std::string walk_name(const ::testing::TestParamInfo<walk_param>& info) {
    return std::string(scenario_names[std::get<0>(info.param)]) + "_" +
           std::string(to_string(std::get<1>(info.param))) + "_" +
           Env::variant_name[std::get<2>(info.param) ? 1 : 0];
}

} // namespace unibuf_fault_walk
