// unibuf-example-lazy-buffer: a shared (lazily synchronized) buffer walked through its states.
//
// Under sync::lazy the buffer tracks where its newest data is and copies (or flushes/invalidates)
// only when an access needs it. This walks one buffer through
//   uninitialized -> host_only -> synchronized -> host_dirty -> synchronized -> device_dirty -> synchronized
// (a first write has no device copy to be newer than: host_only; later host writes make host_dirty)
// with writes, device work, mark_host_dirty / mark_device_dirty and sync_to_device / sync_to_host,
// and a second buffer that only the device ever wrote (device_only). It prints the state after
// every step and checks each one. Runs on the host backend, so it works on any machine.
#include <unibuf/unibuf.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using buffer = unibuf::shared_buffer<int, unibuf::host_backend>;  // read_write, coherent, automatic, lazy

int step_no = 0;

// Prints the step and the state it left, and stops the example if the state is not `want`.
void step(const buffer& b, const char* what, unibuf::buffer_state want) {
    const auto got = b.state();
    std::printf("%d. %-58s -> %s\n", ++step_no, what, std::string(unibuf::to_string(got)).c_str());
    if (got != want)
        throw std::runtime_error(std::string("expected ") + std::string(unibuf::to_string(want)) + " after: " + what);
}

} // namespace

int main() try {
    using unibuf::buffer_state;
    unibuf::host_backend dev;
    unibuf::host_kernel add_one = [](const unibuf::host_invocation& in) {
        for (int& x : in.as<int>(0)) x += 1;
    };
    constexpr std::size_t n = 8;
    buffer b(dev, n);
    step(b, "made: no data anywhere yet", buffer_state::uninitialized);

    b.write(std::vector<int>(n, 10));
    step(b, "write(10s): only the host has data", buffer_state::host_only);

    b.sync_to_device();
    step(b, "sync_to_device(): copies (or flushes) to the device", buffer_state::synchronized);

    {
        auto w = b.write_scope(2, 1);  // one element: the rest of the host copy is still current
        w[0] = 20;
    }
    step(b, "write_scope(2, 1): w[0] = 20: the host copy is newer", buffer_state::host_dirty);

    b.sync_to_device();
    step(b, "sync_to_device(): the host's change reaches the device", buffer_state::synchronized);

    unibuf::dispatch(dev, add_one, {1}, {}, unibuf::bind(b, unibuf::usage::read_write));
    step(b, "dispatch(add_one, read_write): device copy newer", buffer_state::device_dirty);

    b.sync_to_host();
    step(b, "sync_to_host(): waits for the kernel, brings the data back", buffer_state::synchronized);
    const std::vector<int> v = b.to_vector();
    std::printf("   host copy: b[0] = %d, b[2] = %d (10 + 1, 20 + 1)\n", v[0], v[2]);
    if (v[0] != 11 || v[2] != 21) throw std::runtime_error("the kernel's results did not come back");

    // The explicit forms, for writes the buffer cannot see.
    b.data()[5] = 50;  // a raw pointer: the buffer does not see this write...
    b.mark_host_dirty();  // ...until told
    step(b, "data()[5] = 50, then mark_host_dirty()", buffer_state::host_dirty);
    b.sync_to_device();
    step(b, "sync_to_device()", buffer_state::synchronized);
    b.mark_device_dirty();  // e.g. a device write made outside unibuf (your own command buffer)
    step(b, "mark_device_dirty(): a device write unibuf did not submit", buffer_state::device_dirty);
    b.sync_to_host();
    step(b, "sync_to_host()", buffer_state::synchronized);

    // A buffer only the device ever wrote.
    buffer d(dev, n);
    unibuf::host_kernel fill7 = [](const unibuf::host_invocation& in) {
        for (int& x : in.as<int>(0)) x = 7;
    };
    unibuf::dispatch(dev, fill7, {1}, {}, unibuf::bind(d, unibuf::usage::write));
    step(d, "second buffer: dispatch(fill7, write) on no data", buffer_state::device_only);
    const int first = d.to_vector().at(0);  // a host read brings the device data over
    step(d, "to_vector(): a host read syncs to the host", buffer_state::synchronized);
    std::printf("   d[0] = %d\n", first);
    return first == 7 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "unibuf-example-lazy-buffer: %s\n", e.what());
    return 1;
}
