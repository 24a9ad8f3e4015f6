// Built with -fno-exceptions (config.hpp's promise): the core, the host backend and the transfer
// layer compile without exceptions, and the non-throwing entry points report through
// std::error_code. Exits non-zero on any wrong value.
#include <unibuf/unibuf.hpp>

#include <cstdio>
#include <vector>

static_assert(UNIBUF_EXCEPTIONS == 0, "this check must be compiled with -fno-exceptions");

namespace {
int failures = 0;
void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "no_exceptions: %s\n", what);
        ++failures;
    }
}
} // namespace

int main() {
    using namespace unibuf;
    host_backend dev;
    std::error_code ec;

    // A buffer made and used without exceptions, errors as codes.
    auto buf = shared_buffer<float, host_backend>::try_create(dev, 256, ec);
    check(buf.has_value() && !ec, "try_create of 256 floats failed");
    if (!buf) return 1;
    std::vector<float> ones(256, 1.0f);
    check(!buf->try_write(ones), "try_write of 256 floats failed");
    check(buf->try_write(ones, 1) == errc::out_of_range, "try_write past the end did not report out_of_range");
    host_kernel twice = [](const host_invocation& in) { for (float& x : in.as<float>(0)) x *= 2.0f; };
    (void)dispatch(dev, twice, {1}, {}, bind(*buf, usage::read_write));
    std::vector<float> back(256);
    check(!buf->try_read(back) && back[7] == 2.0f, "try_read after the dispatch did not give 2");

    // A byte size that overflows is an error code, never a wrapped allocation.
    auto huge = shared_buffer<double, host_backend>::try_create(dev, SIZE_MAX / 8 + 2, ec);
    check(!huge && ec == errc::out_of_range, "an overflowing byte size was not reported as out_of_range");

    // The pool and the producer instantiate and run.
    auto pool = buffer_pool<host_backend>::try_create(dev, pool_config::with_bytes(1 << 16), ec);
    check(pool.has_value() && !ec, "pool try_create failed");
    if (pool) {
        auto slice = pool->try_acquire<float>(64, ec);
        check(slice.has_value() && slice->size() == 64, "pool try_acquire of 64 floats failed");
        auto too_big = pool->try_acquire<double>(SIZE_MAX / 8, ec);
        check(!too_big && ec, "an impossible pool request was not refused");
    }
    producer<host_backend> prod(dev, 2);
    upload_buffer<float, host_backend> up(dev, 4096);
    auto r = prod.fill(up, [](write_only_view<float> out, std::size_t first) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = float(first + i);
    });
    check(r.bytes == 4096 * sizeof(float), "producer fill did not cover the buffer");

    if (failures == 0) std::printf("no_exceptions: ok\n");
    return failures == 0 ? 0 : 1;
}
