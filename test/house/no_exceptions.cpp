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
    dispatch(dev, twice, {1}, {}, bind(*buf, usage::read_write));
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
    // A pipelined fill through the producer's staging ring: the writer loop, the coordinator's
    // copies and its slot waits compile and run without exceptions too.
    produce_options staged;
    staged.grain_bytes = 1024;
    staged.chunk_bytes = 4096;
    staged.ring_chunks = 2;
    staged.force = produce_path::staged_pipelined;
    producer<host_backend> piped(dev, 2, staged);
    auto rs = piped.fill(up, [](write_only_view<float> out, std::size_t first) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = float(2 * (first + i));
    });
    check(rs.path == produce_path::staged_pipelined && rs.copies == 4, "the staged fill did not copy 4 chunks");
    readback_buffer<float, host_backend> seen(dev, 4096);
    seen.copy_from(up);
    check(seen.to_vector()[4095] == 2.0f * 4095, "the staged fill's last element did not arrive");

    // The ring and the upload stream instantiate and run through their non-throwing forms.
    ring<shared_buffer<float, host_backend>, 2> rg(dev, 16);
    if (auto w = rg.try_claim()) {
        (*w)->fill(5.0f);
        w->publish();
    } else {
        check(false, "ring try_claim on a fresh ring failed");
    }
    auto rd = rg.try_read();
    check(rd.has_value() && (*rd)->to_vector()[3] == 5.0f, "ring try_read did not see the published item");
    if (rd) rd->release();
    upload_stream<host_backend> stream(dev, 1024, 2);
    auto blk = stream.try_push<float>(16, ec);
    check(blk.has_value() && !ec, "upload_stream try_push of 16 floats failed");
    auto too_large = stream.try_push<float>(1024, ec);
    check(!too_large && ec == errc::capacity_exceeded, "a push larger than a segment was not refused");
    block_allocator ranges(1 << 12, 64);
    check(static_cast<bool>(ranges.allocate(100, 64)), "block_allocator could not take 100 bytes of 4096");

    if (failures == 0) std::printf("no_exceptions: ok\n");
    return failures == 0 ? 0 : 1;
}
