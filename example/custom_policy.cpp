// unibuf-example-custom-policy: your own policy types, composed with unibuf's.
//
// A policy is a plain tag type: a category, a name, and its category's traits (README, "The
// policies"). Here the application defines an access policy (the host streams writes and never
// reads) and a placement policy (system RAM the device reads over the bus), and composes them with
// the built-in coherence::explicit_flush and sync::fenced, in any order. The buffer takes its host
// view, its memory request and its compile-time rules from those traits, exactly as for the
// built-in policies. Runs on the host backend, so it works on any machine.
//
// A wrong policy is rejected with one message that names what it lacks (rule R3). Compiling this
// file with -DUNIBUF_COMPILE_FAIL uses `app::bad_sync` below (no `kind`); GCC 12 says (from
// unibuf/policy/policy_set.hpp):
//
//   error: static assertion failed: unibuf: the sync policy lacks a kind trait (static constexpr
//          sync_kind) (see SyncPolicy) (rule R3)
//
// (the test example.custom_policy.wrong checks that this is still the message)
// expect-error: the sync policy lacks a kind trait \(static constexpr sync_kind\) \(see SyncPolicy\) \(rule R3\)
#include <unibuf/unibuf.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace app {

/// The host fills buffers for the device and never reads them back through the mapping.
struct stream_writes {
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = false;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "app::stream_writes";
};

/// System RAM the device reads over the bus (no copy to device memory), with a host pointer.
struct system_ram {
    using policy_category = unibuf::placement_tag;
    static constexpr unibuf::placement_kind kind = unibuf::placement_kind::host;
    static constexpr bool host_pointer = true;
    static constexpr std::string_view name = "app::system_ram";
};

/// A wrong one: a sync policy without its `kind`.
struct bad_sync {
    using policy_category = unibuf::sync_tag;
    static constexpr std::string_view name = "app::bad_sync";
};

} // namespace app

namespace {

// The same type, whatever the order of the policies; the missing category (sync) is defaulted.
using frame = unibuf::basic_buffer<float, unibuf::host_backend, app::system_ram, unibuf::coherence::explicit_flush,
                                   app::stream_writes>;
static_assert(std::is_same_v<frame, unibuf::basic_buffer<float, unibuf::host_backend, app::stream_writes,
                                                          unibuf::sync::fenced, unibuf::coherence::explicit_flush,
                                                          app::system_ram>>);
// The access policy chose the host view: a write-only view (reading an element does not compile, rule R8).
static_assert(!frame::host_readable && frame::host_writable);

std::string name_of(std::string_view s) { return std::string(s); }

} // namespace

int main() try {
    unibuf::host_backend dev;
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<float, unibuf::host_backend, app::stream_writes, app::bad_sync> wrong(dev, 16);
#endif
    constexpr std::size_t n = 1000;
    frame f(dev, n);
    std::printf("frame = basic_buffer<float, host_backend, %s, %s, %s, %s>\n",
                name_of(frame::access_policy::name).c_str(), name_of(frame::coherence_policy::name).c_str(),
                name_of(frame::placement_policy::name).c_str(), name_of(frame::sync_policy::name).c_str());
    const auto& r = f.report();
    std::printf("memory: %s, %s, %s (%s)\n", name_of(unibuf::to_string(r.chosen)).c_str(),
                r.zero_copy ? "zero-copy" : "staged", r.host_coherent ? "coherent" : "needs flush", r.reason.c_str());

    {
        auto w = f.write_scope();  // write-only view; the scope's end flushes (explicit_flush)
        for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<float>(i);
    }
    unibuf::shared_buffer<double, unibuf::host_backend> sum(dev, 1);
    unibuf::host_kernel reduce = [](const unibuf::host_invocation& in) {
        double s = 0;
        for (float x : in.as<float>(0)) s += x;
        in.as<double>(1)[0] = s;
    };
    unibuf::dispatch(dev, reduce, {1}, {}, unibuf::bind(f, unibuf::usage::read), unibuf::bind(sum, unibuf::usage::write));
    const double got = sum.to_vector().at(0), want = double(n) * double(n - 1) / 2;
    std::printf("wrote %zu floats through the write-only view, flushed; the device summed them: %g (expected %g)\n", n,
                got, want);
    return got == want ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "unibuf-example-custom-policy: %s\n", e.what());
    return 1;
}
