// Rule R10: the explicit lazy syncs (sync_to_device, sync_to_host, mark_host_dirty,
// mark_device_dirty) exist only under sync::lazy; a fenced buffer's named call is flush().
// expect-error: sync_to_device\(\) exists only under sync::lazy.*\(rule R10\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::upload_buffer<float, unibuf::host_backend> up(dev, 8);  // fenced
    up.fill(1.0f);
#ifdef UNIBUF_COMPILE_FAIL
    up.sync_to_device();
#else
    up.flush();
#endif
}
