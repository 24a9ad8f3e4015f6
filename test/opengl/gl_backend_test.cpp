// OpenGL backend tests: the context, the storage flags each policy combination gets (as the driver
// reports them), explicit flush, the forced traditional path, device placement staging, kernels and
// dispatch validation, fences with bounded waits. Thread rules are in gl_thread_test.cpp.
#include "../common/combos.hpp"
#include "../common/expect_error.hpp"
#include "gl_env.hpp"

#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using namespace unibuf;
using unibuf_test::gl_context_holder;
using unibuf_test::gl_env;
using unibuf_test::gl_test;

struct saxpy_params {
    float a;
    std::uint32_t n;
};

std::vector<float> iota(std::size_t n, float base) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i);
    return v;
}

template <class X, class Y>
gl_backend::fence saxpy(X& x, Y& y, float a, std::size_t n) {
    const saxpy_params p{a, static_cast<std::uint32_t>(n)};
    return unibuf::dispatch(gl_env::get(), gl_env::saxpy(), dispatch_size{static_cast<std::uint32_t>((n + 63) / 64), 1, 1},
                            push_constants(p), bind(x, usage::read), bind(y, usage::read_write));
}

// ---- context ------------------------------------------------------------------------------------

TEST_F(gl_test, HeadlessDebugCoreContextIsCurrentWithGL45) {
    const auto& ctx = gl_context_holder::get().context;
    EXPECT_TRUE(ctx.is_debug());
    EXPECT_GE(ctx.gl_major() * 10 + ctx.gl_minor(), 45) << ctx.description();
    EXPECT_FALSE(ctx.description().empty());
    GLint mask = 0;
    glGetIntegerv(GL_CONTEXT_PROFILE_MASK, &mask);
    EXPECT_NE(mask & GL_CONTEXT_CORE_PROFILE_BIT, 0);
    const auto& caps = gpu().capabilities();
    EXPECT_TRUE(caps.buffer_storage) << caps.version;
    EXPECT_GE(caps.storage_offset_alignment, 1u);
    EXPECT_EQ(gpu().limits().min_storage_offset_alignment, caps.storage_offset_alignment);
    RecordProperty("context", ctx.description());
    std::printf("context: %s\nattempts: %s\n", ctx.description().c_str(), ctx.attempts().c_str());
}

TEST_F(gl_test, DebugCallbackCollectsErrors) {
    auto& log = gl_context_holder::get().log;
    ASSERT_EQ(log.error_count(), 0u);
    glBindBuffer(GL_ARRAY_BUFFER, 0xdeadbeefu);  // not a buffer name: GL_INVALID_OPERATION
    const auto errors = log.take_errors();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].type, static_cast<GLenum>(GL_DEBUG_TYPE_ERROR));
    EXPECT_NE(gl_debug_log::describe(errors[0]).find("error"), std::string::npos);
    EXPECT_EQ(glGetError(), static_cast<GLenum>(GL_INVALID_OPERATION));
}

TEST_F(gl_test, EachPlatformOfferedGivesAContextOnItsOwnThread) {
    (void)gpu();  // this thread's context first, so that the check at the end has one
    for (auto p : {egl_context::platform::device, egl_context::platform::surfaceless}) {
        std::string outcome;
        int version = 0;
        bool made = false;
        std::thread t([&] {
            egl_context::options o;
            o.platforms = {p};
            try {
                egl_context c(o);
                made = true;
                version = c.gl_major() * 10 + c.gl_minor();
                outcome = c.description();
            } catch (const std::system_error& e) {
                outcome = e.what();
            }
        });
        t.join();
        if (!made && outcome.find("client extension") != std::string::npos) {
            std::printf("platform %s not offered: %s\n", std::string(egl_context::to_string(p)).c_str(), outcome.c_str());
            continue;  // the EGL client extension of this platform is missing on this driver
        }
        EXPECT_TRUE(made) << egl_context::to_string(p) << ": " << outcome;
        EXPECT_GE(version, 45) << outcome;
    }
    // The contexts above reloaded glad's pointers; this thread's context still works.
    GLint v = 0;
    glGetIntegerv(GL_MAJOR_VERSION, &v);
    EXPECT_GE(v, 4);
}

TEST_F(gl_test, MovedFromContextsAndDebugLogsAreEmptyAndSafe) {
    (void)gpu();
    std::string failure;
    std::thread t([&] {  // a context of its own: making one current must not touch this thread's
        try {
            egl_context::options o;
            o.debug = true;
            egl_context c(o);
            egl_context d(std::move(c));
            gl_debug_log log(true);
            gl_debug_log moved_log(std::move(log));
            // NOLINTBEGIN(bugprone-use-after-move): the moved-from state is what is tested
            if (c.context() != EGL_NO_CONTEXT || c.display() != EGL_NO_DISPLAY) failure += "handles kept; ";
            c.release_current();  // nothing to release
            c.reset();
            try {
                c.make_current();
                failure += "make_current of an empty context did not throw; ";
            } catch (const std::system_error& e) {
                if (e.code() != make_error_code(errc::invalid_argument)) failure += std::string("wrong error: ") + e.what();
            }
            if (!log.take_errors().empty() || !log.take_other().empty() || log.error_count() != 0 || log.other_count() != 0)
                failure += "a moved-from log holds messages; ";
            // NOLINTEND(bugprone-use-after-move)
            // The moved-to log still collects: an error provoked on purpose arrives there.
            glBindBuffer(GL_ARRAY_BUFFER, 0xdeadbeef);
            if (moved_log.take_errors().empty()) failure += "the moved-to log lost the callback; ";
            d.make_current();
        } catch (const std::system_error& e) {
            failure += e.what();
        }
    });
    t.join();
    EXPECT_EQ(failure, "");
    GLint v = 0;  // this thread's context is untouched
    glGetIntegerv(GL_MAJOR_VERSION, &v);
    EXPECT_GE(v, 4);
}

TEST_F(gl_test, NoPlatformAtAllIsAnErrorListingTheAttempts) {
    egl_context::options o;
    o.platforms = {};
    unibuf_test::expect_error([&] { egl_context c(o); }, errc::unsupported, {"no headless OpenGL 4.5+"});
}

// ---- storage flags per policy combination -------------------------------------------------------

/// Calls f.template operator()<Buf>() with the GL buffer type of every valid policy combination.
template <class F>
void for_each_valid_combo(F&& f) {
    unibuf_test::for_each_combo(
        [&]<class Combo>() { f.template operator()<typename Combo::template buffer<float, gl_backend>>(); });
}

TEST_F(gl_test, StorageAndMapFlagsFollowThePoliciesAsTheDriverReportsThem) {
    int combos = 0;
    for_each_valid_combo([&]<class Buf>() {
        ++combos;
        using A = typename Buf::access_policy;
        using C = typename Buf::coherence_policy;
        using P = typename Buf::placement_policy;
        SCOPED_TRACE(std::string(A::name) + ", " + std::string(C::name) + ", " + std::string(P::name) + ", " +
                     std::string(Buf::sync_policy::name));
        Buf b(gpu(), 1000);
        const auto& a = b.allocation();
        const gl_storage_plan& plan = a.plan();
        const GLuint host_side = P::kind == placement_kind::device ? a.staging_buffer() : a.buffer();
        const GLbitfield storage = static_cast<GLbitfield>(gpu().buffer_parameter(host_side, GL_BUFFER_STORAGE_FLAGS));
        const GLbitfield access = static_cast<GLbitfield>(gpu().buffer_parameter(host_side, GL_BUFFER_ACCESS_FLAGS));
        EXPECT_EQ(gpu().buffer_parameter(a.buffer(), GL_BUFFER_IMMUTABLE_STORAGE), GL_TRUE);
        EXPECT_EQ(gpu().buffer_parameter(host_side, GL_BUFFER_MAPPED), GL_TRUE);
        EXPECT_EQ(gpu().buffer_parameter(host_side, GL_BUFFER_SIZE), 4000);
        // What the host may do is exactly what is mapped.
        EXPECT_EQ((access & GL_MAP_READ_BIT) != 0, A::host_read);
        EXPECT_EQ((access & GL_MAP_WRITE_BIT) != 0, A::host_write);
        EXPECT_NE(access & GL_MAP_PERSISTENT_BIT, 0u);
        EXPECT_NE(storage & GL_MAP_PERSISTENT_BIT, 0u);
        if constexpr (P::kind == placement_kind::device) {
            EXPECT_EQ(a.mode(), gl_storage_mode::staged);
            EXPECT_EQ(gpu().buffer_parameter(a.buffer(), GL_BUFFER_STORAGE_FLAGS), 0) << "device memory has no map bits";
            EXPECT_NE(storage & GL_CLIENT_STORAGE_BIT, 0u) << "the staging buffer lives in system memory";
            EXPECT_NE(storage & GL_MAP_COHERENT_BIT, 0u);
            EXPECT_FALSE(b.report().zero_copy);
        } else {
            EXPECT_EQ(a.mode(), gl_storage_mode::persistent);
            EXPECT_TRUE(b.report().zero_copy);
            EXPECT_EQ((storage & GL_MAP_COHERENT_BIT) != 0, !C::requires_flush);
            EXPECT_EQ((access & GL_MAP_COHERENT_BIT) != 0, !C::requires_flush);
            EXPECT_EQ((access & GL_MAP_FLUSH_EXPLICIT_BIT) != 0, C::requires_flush && A::host_write);
            EXPECT_EQ(b.report().host_coherent, !C::requires_flush);
            if constexpr (P::kind == placement_kind::host) {
                EXPECT_NE(storage & GL_CLIENT_STORAGE_BIT, 0u);
            } else if constexpr (P::kind == placement_kind::device_mapped || C::uncached) {
                EXPECT_EQ(storage & GL_CLIENT_STORAGE_BIT, 0u);
            }
            if constexpr (C::uncached) {
                EXPECT_EQ(access & GL_MAP_READ_BIT, 0u) << "write-combined: write bit only";
            }
        }
        EXPECT_EQ(storage & (GL_MAP_READ_BIT | GL_MAP_WRITE_BIT | GL_MAP_PERSISTENT_BIT | GL_MAP_COHERENT_BIT |
                             GL_CLIENT_STORAGE_BIT),
                  P::kind == placement_kind::device ? plan.staging_storage_flags : plan.storage_flags);
        EXPECT_TRUE(b.report().fallbacks.empty());
        EXPECT_FALSE(b.report().reason.empty());
    });
    EXPECT_EQ(combos, 69);
}

// ---- explicit flush, staging, the traditional path ------------------------------------------------

TEST_F(gl_test, ExplicitFlushOfSubRangesReachesTheKernel) {
    const std::size_t n = 4096;
    basic_buffer<float, gl_backend, access::write_only, coherence::explicit_flush, placement::host, sync::none> x(gpu(), n);
    basic_buffer<float, gl_backend, placement::host, sync::fenced> y(gpu(), n);
    y.fill(0.0f);
    ASSERT_NE(x.allocation().plan().map_flags & GL_MAP_FLUSH_EXPLICIT_BIT, 0u);
    auto v = x.view();
    const auto data = iota(n, 1.0f);
    v.assign(data);
    x.flush(0, n / 2);       // two flushes, each of its own range
    x.flush(n / 2, n / 2);
    (void)saxpy(x, y, 1.0f, n);
    EXPECT_EQ(y.to_vector(), data);
}

TEST_F(gl_test, ReadOnlyExplicitFlushReadsBackAfterInvalidate) {
    const std::size_t n = 777;
    basic_buffer<float, gl_backend, access::read_only, coherence::explicit_flush, placement::automatic, sync::none> out(gpu(), n);
    basic_buffer<float, gl_backend, placement::host, sync::fenced> ones(gpu(), n);
    ones.fill(1.0f);
    ASSERT_EQ(out.allocation().plan().storage_flags & GL_MAP_COHERENT_BIT, 0u);
    basic_buffer<float, gl_backend, placement::host, sync::fenced> init(gpu(), n);
    init.write(iota(n, 0.0f));
    out.copy_from(init);
    (void)saxpy(ones, out, 2.0f, n);  // out = 2 + i
    ASSERT_TRUE(out.wait(default_wait_timeout));
    out.invalidate();
    const auto got = out.to_vector();
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], 2.0f + static_cast<float>(i)) << i;
}

TEST_F(gl_test, DevicePlacementStagesThroughCopiesBothWays) {
    const std::size_t n = 3000;
    basic_buffer<float, gl_backend, placement::device, sync::fenced> d(gpu(), n);
    const auto& a = d.allocation();
    ASSERT_EQ(a.mode(), gl_storage_mode::staged);
    ASSERT_NE(a.staging_buffer(), 0u);
    ASSERT_NE(a.staging_buffer(), a.buffer());
    EXPECT_EQ(d.report().chosen, placement_kind::device);
    // write(): host -> staging mapping -> glCopyNamedBufferSubData into the device buffer (fenced).
    const auto data = iota(n, 10.0f);
    d.write(data);
    ASSERT_TRUE(d.wait(default_wait_timeout));
    std::vector<float> device_copy(n);
    glGetNamedBufferSubData(a.buffer(), 0, static_cast<GLsizeiptr>(n * sizeof(float)), device_copy.data());
    EXPECT_EQ(device_copy, data) << "the device buffer holds the written data";
    // The kernel writes the device buffer; read() copies it back through staging.
    basic_buffer<float, gl_backend, placement::host, sync::fenced> ones(gpu(), n);
    ones.fill(1.0f);
    (void)saxpy(ones, d, 5.0f, n);
    const auto back = d.to_vector();
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], data[i] + 5.0f) << i;
}

TEST_F(gl_test, ForcedTraditionalPathIsReportedAndMovesDataWithSubData) {
    (void)gpu();  // the context first
    gl_backend old_school(gl_backend::options{.force_traditional = true});
    const std::size_t n = 1500;
    basic_buffer<float, gl_backend, access::write_only, coherence::write_combined, placement::device_mapped, sync::fenced> x(old_school, n);
    basic_buffer<float, gl_backend, placement::host, sync::lazy> y(old_school, n);
    const auto& r = x.report();
    ASSERT_EQ(r.fallbacks.size(), 1u);
    EXPECT_NE(r.fallbacks[0].find("force_traditional"), std::string::npos) << r.fallbacks[0];
    EXPECT_NE(r.fallbacks[0].find("glBufferSubData"), std::string::npos) << r.fallbacks[0];
    EXPECT_FALSE(r.zero_copy);
    EXPECT_EQ(x.allocation().mode(), gl_storage_mode::shadow);
    EXPECT_EQ(old_school.buffer_parameter(x.allocation().buffer(), GL_BUFFER_IMMUTABLE_STORAGE), GL_FALSE);
    EXPECT_EQ(old_school.buffer_parameter(x.allocation().buffer(), GL_BUFFER_MAPPED), GL_FALSE);
    const auto data = iota(n, -3.0f);
    x.write(data);
    y.fill(1.0f);
    gl_kernel k(old_school, kernels::saxpy_glsl, "saxpy");
    const saxpy_params p{3.0f, static_cast<std::uint32_t>(n)};
    unibuf::dispatch(old_school, k, dispatch_size{static_cast<std::uint32_t>((n + 63) / 64)}, push_constants(p),
                           bind(x, usage::read), bind(y));
    const auto got = y.to_vector();
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], 3.0f * data[i] + 1.0f) << i;
}

TEST_F(gl_test, ZeroSizedAllocationIsRejected) {
    std::error_code ec;
    auto a = gpu().try_allocate(memory_request{}, ec);
    EXPECT_EQ(ec, make_error_code(errc::invalid_argument));
    EXPECT_FALSE(a);
}

TEST_F(gl_test, EmptyAllocationsAreRejectedClearly) {
    memory_request r;
    r.size_bytes = 256;
    auto real = gpu().allocate(r);
    gl_backend::allocation empty;
    auto moved = gpu().allocate(r);
    auto taken = std::move(moved);
    for (gl_backend::allocation* e : {&empty, &moved}) {  // NOLINT(bugprone-use-after-move)
        EXPECT_FALSE(*e);
        EXPECT_EQ(e->host_data(), nullptr);
        EXPECT_EQ(e->size(), 0u);
        unibuf_test::expect_error([&] { gpu().flush(*e, 0, 0); }, errc::invalid_argument, {"flush", "empty"});
        unibuf_test::expect_error([&] { gpu().invalidate(*e, 0, 0); }, errc::invalid_argument, {"invalidate", "empty"});
        unibuf_test::expect_error([&] { (void)gpu().copy(real, 0, *e, 0, 4); }, errc::invalid_argument,
                                  {"copy destination", "empty"});
    }
    // Ranges near 2^64 are out of range, never wrapped into the allocation.
    unibuf_test::expect_error([&] { gpu().flush(real, ~std::uint64_t{0}, 2); }, errc::out_of_range,
                              {"in an allocation of 256 bytes"});
    EXPECT_TRUE(gpu().wait_idle());
}

// Allocations and kernels point to their backend's shared state: a backend is never moved.
static_assert(!std::is_move_constructible_v<gl_backend> && !std::is_move_assignable_v<gl_backend>);

TEST_F(gl_test, ASizeGLCannotTakeIsRefusedBeforeAnyGLCall) {
    // GLsizeiptr is signed: 2^63 bytes and more would reach GL as a negative size (GL_INVALID_VALUE).
    memory_request r;
    r.size_bytes = std::uint64_t{1} << 63;
    std::error_code ec;
    auto a = gpu().try_allocate(r, ec);
    EXPECT_FALSE(a);
    EXPECT_EQ(ec, make_error_code(errc::out_of_memory));
    unibuf_test::expect_error([&] { (void)gpu().allocate(r); }, errc::out_of_memory,
                              {"asked for 9223372036854775808 bytes", "GLsizeiptr"});
}  // TearDown: no GL error was raised

// ---- kernels and dispatch ------------------------------------------------------------------------

TEST_F(gl_test, SaxpyKernelReportsItsInterface) {
    const gl_kernel& k = gl_env::saxpy();
    EXPECT_EQ(k.local_size()[0], 64u);
    EXPECT_EQ(k.storage_bindings(), (std::vector<std::uint32_t>{0, 1}));
    EXPECT_GE(k.push_size(), sizeof(saxpy_params));
}

TEST_F(gl_test, BadGlslIsRejectedWithTheCompilerLog) {
    unibuf_test::expect_error(
        [&] { gl_kernel k(gpu(), "#version 450\nlayout(local_size_x = 1) in;\nvoid main() { undeclared = 1; }\n", "broken"); },
        errc::invalid_argument, {"'broken'", "undeclared"});
    // Drivers may report the failed compile as debug output of the shader compiler: expected here.
    for (const auto& m : gl_context_holder::get().log.take_errors())
        EXPECT_EQ(m.source, static_cast<GLenum>(GL_DEBUG_SOURCE_SHADER_COMPILER)) << gl_debug_log::describe(m);
}

// A header comment, an #extension line and all three rewritten built-ins: the kernel sees the
// whole dispatch even when it runs as several glDispatchCompute calls.
constexpr std::string_view group_ids_glsl = R"(// group ids
/* across parts */
#version 430
#extension GL_ARB_compute_shader : enable
layout(local_size_x = 2) in;
layout(std430, binding = 0) buffer Out { uint v[]; };
void main() {
    // gl_GlobalInvocationID in a comment is rewritten too, harmlessly
    uint i = gl_GlobalInvocationID.x;
    v[i] = (gl_WorkGroupID.x == i / 2u && gl_NumWorkGroups.x * 2u == uint(v.length())) ? i + 1u : 0u;
}
)";

TEST_F(gl_test, DispatchesBeyondTheGroupLimitAreSplitAndSeeTheWholeGrid) {
    const std::uint32_t limit = gpu().capabilities().max_groups[0];
    ASSERT_GE(limit, 65535u);
    // Past the limit where it is small (65535 on llvmpipe: two parts); 2^20 + 3 groups in one part elsewhere.
    const std::uint32_t groups = std::min<std::uint32_t>(limit, 1u << 20) + 3;
    RecordProperty("parts", groups > limit ? "2" : "1");
    gl_kernel k(gpu(), group_ids_glsl, "group_ids");
    basic_buffer<std::uint32_t, gl_backend, placement::host, sync::fenced> out(gpu(), std::size_t{groups} * 2);
    unibuf::dispatch(gpu(), k, dispatch_size{groups}, {}, bind(out, usage::write));
    const auto v = out.to_vector();
    std::size_t bad = 0;
    for (std::size_t i = 0; i < v.size(); ++i)
        if (v[i] != i + 1 && bad++ < 3) ADD_FAILURE() << "element " << i << " is " << v[i];
    EXPECT_EQ(bad, 0u);
    // Smaller dispatches after a split reset the base and the count.
    basic_buffer<std::uint32_t, gl_backend, placement::host, sync::fenced> small(gpu(), 8);
    unibuf::dispatch(gpu(), k, dispatch_size{4}, {}, bind(small, usage::write));
    EXPECT_EQ(small.to_vector(), (std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST_F(gl_test, StorageBindingsHonourTheOffsetAlignment) {
    const std::uint64_t align = gpu().capabilities().storage_offset_alignment;
    const std::size_t n = 256;
    const std::size_t per_align = static_cast<std::size_t>(align / sizeof(float));
    using plain = basic_buffer<float, gl_backend, placement::host, sync::fenced>;
    auto base = gpu().allocate(plain::request_for(n + 2 * per_align + 1));
    // A slice at an aligned offset binds with glBindBufferRange at that offset.
    plain x(in_slice, gpu(), base, align, n, slice_release{});
    plain y(gpu(), n);
    std::vector<float> before(n + 2 * per_align + 1, -1.0f);
    std::memcpy(base.host_data(), before.data(), before.size() * sizeof(float));
    x.write(iota(n, 0.0f));
    y.fill(0.5f);
    (void)saxpy(x, y, 1.0f, n);
    const auto got = y.to_vector();
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], static_cast<float>(i) + 0.5f) << i;
    if (align < sizeof(float) * 2) GTEST_SKIP() << "storage offset alignment is " << align << ": no misaligned float offset";
    // A slice one float further is misaligned: a clear error, no GL error.
    plain bad(in_slice, gpu(), base, align + sizeof(float), n, slice_release{});
    const std::string named = "GL_SHADER_STORAGE_BUFFER_OFFSET_ALIGNMENT (" + std::to_string(align) + ")";
    unibuf_test::expect_error([&] { (void)saxpy(bad, y, 1.0f, n); }, errc::invalid_argument, {named.c_str()});
}

TEST_F(gl_test, DispatchRejectsMissingBindingsAndOversizedPushConstants) {
    basic_buffer<float, gl_backend, placement::host, sync::fenced> x(gpu(), 64);
    x.fill(1.0f);
    const saxpy_params p{1.0f, 64};
    unibuf_test::expect_error([&] { unibuf::dispatch(gpu(), gl_env::saxpy(), dispatch_size{1}, push_constants(p), bind(x)); },
                              errc::invalid_argument, {"uses storage binding 1 but the dispatch binds 1 buffer"});
    struct big {
        std::uint8_t bytes[4096];
    };
    const big too_much{};
    basic_buffer<float, gl_backend, placement::host, sync::fenced> y(gpu(), 64);
    EXPECT_THROW(unibuf::dispatch(gpu(), gl_env::saxpy(), dispatch_size{1}, push_constants(too_much), bind(x), bind(y)),
                 std::system_error);
}

// ---- fences --------------------------------------------------------------------------------------

// Dependent integer work: 16 LCG steps per loop iteration, `rounds` iterations per invocation.
// One loop below 65536 iterations: llvmpipe caps loops there (a counter per loop, not per entry).
constexpr std::string_view spin_glsl = R"(#version 430
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Out { uint v[]; };
layout(std140, binding = 0) uniform Params { uint rounds; } p;
uint step(uint x) { return x * 1664525u + 1013904223u; }
void main() {
    uint x = gl_GlobalInvocationID.x;
    for (uint i = 0u; i < p.rounds; ++i) {
        x = step(step(step(step(x))));
        x = step(step(step(step(x))));
        x = step(step(step(step(x))));
        x = step(step(step(step(x))));
    }
    v[gl_GlobalInvocationID.x] = x;
}
)";

TEST_F(gl_test, FencesAreCopyableValuesCompletingInOrder) {
    const gl_backend::fence none;
    EXPECT_TRUE(none.empty());
    EXPECT_TRUE(gpu().is_complete(none));
    EXPECT_TRUE(gpu().wait(none, std::chrono::nanoseconds(0)));

    auto first = gpu().submitted_fence();
    auto second = gpu().submitted_fence();
    const auto copy = second;  // copies share the GL sync
    EXPECT_EQ(copy, second);
    EXPECT_FALSE(first == second);
    EXPECT_LT(first.serial(), second.serial());
    ASSERT_TRUE(gpu().wait(copy, std::chrono::seconds(10)));
    EXPECT_TRUE(gpu().is_complete(second));
    // Fences complete in submission order: `first` (never polled) is known complete without asking
    // GL, so even another thread may ask.
    bool first_complete = false;
    std::thread t([&] { first_complete = gpu().is_complete(first); });
    t.join();
    EXPECT_TRUE(first_complete);
    EXPECT_TRUE(gpu().wait_idle());
}

TEST_F(gl_test, WaitsOnPendingWorkAreBounded) {
    gl_kernel spin(gpu(), spin_glsl, "spin");
    basic_buffer<std::uint32_t, gl_backend, placement::host, sync::fenced> out(gpu(), 64);
    // About 2^20 dependent rounds per invocation (milliseconds on a GPU): long enough that a zero-length
    // poll finds it pending on any device that runs dispatches asynchronously.
    const std::uint32_t rounds = 65535;
    unibuf::dispatch(gpu(), spin, dispatch_size{1}, push_constants(rounds), bind(out));
    auto after = gpu().submitted_fence();
    const auto t0 = std::chrono::steady_clock::now();
    const bool done = gpu().wait(after, std::chrono::nanoseconds(0));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "a zero-length wait blocked";
    std::uint32_t x = 5;  // invocation 5's result, computed here
    for (std::uint32_t i = 0; i < rounds * 16; ++i) x = x * 1664525u + 1013904223u;
    if (done) {
        EXPECT_EQ(out.to_vector()[5], x);
        GTEST_SKIP() << "the driver runs compute dispatches synchronously (" << gpu().capabilities().renderer
                     << "): no asynchronous compute, so no pending fence to time out on";
    }
    EXPECT_FALSE(gpu().is_complete(after));
    EXPECT_FALSE(gpu().wait(after, std::chrono::microseconds(50)));
    ASSERT_TRUE(gpu().wait(after, std::chrono::seconds(60)));
    EXPECT_TRUE(gpu().is_complete(after));
    EXPECT_EQ(out.to_vector()[5], x);
}

} // namespace
