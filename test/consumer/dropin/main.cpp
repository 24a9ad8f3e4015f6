// Header-only drop-in: compiled with nothing but `-std=c++20 -I include`. A lazily synchronized
// buffer with a user-defined access policy, a kernel that sums it, and the state machine.
// Exits non-zero on any wrong value.
#include <unibuf/unibuf.hpp>

#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string_view>
#include <vector>

namespace {
/// The application's own access policy (the host reads and writes).
struct app_access {
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = true;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "app::access";
};

int state_width(unibuf::buffer_state s) { return static_cast<int>(unibuf::to_string(s).size()); }
const char* state_chars(unibuf::buffer_state s) { return unibuf::to_string(s).data(); }
} // namespace

int main() {
    unibuf::host_backend dev;
    constexpr std::size_t n = 10000;
    unibuf::basic_buffer<std::int64_t, unibuf::host_backend, unibuf::sync::lazy, app_access> data(dev, n);
    unibuf::shared_buffer<std::int64_t, unibuf::host_backend> sum(dev, 1);

    std::vector<std::int64_t> values(n);
    std::iota(values.begin(), values.end(), std::int64_t{1});
    data.write(values);
    if (data.state() != unibuf::buffer_state::host_only) {
        std::fprintf(stderr, "dropin consumer: state after write is %.*s, expected host_only\n",
                     state_width(data.state()), state_chars(data.state()));
        return 1;
    }
    unibuf::host_kernel reduce = [](const unibuf::host_invocation& in) {
        auto src = in.as<std::int64_t>(0);
        in.as<std::int64_t>(1)[0] = std::accumulate(src.begin(), src.end(), std::int64_t{0});
    };
    unibuf::dispatch(dev, reduce, {1}, {}, unibuf::bind(data, unibuf::usage::read),
                           unibuf::bind(sum, unibuf::usage::write));
    const std::int64_t got = sum.to_vector().at(0);
    const std::int64_t want = std::int64_t{n} * (std::int64_t{n} + 1) / 2;
    if (got != want || sum.state() != unibuf::buffer_state::synchronized) {
        std::fprintf(stderr, "dropin consumer: sum = %lld (state %.*s), expected %lld (synchronized)\n",
                     static_cast<long long>(got), state_width(sum.state()), state_chars(sum.state()),
                     static_cast<long long>(want));
        return 1;
    }
    std::printf("dropin consumer: ok (sum of 1..%zu = %lld)\n", n, static_cast<long long>(got));
    return 0;
}
