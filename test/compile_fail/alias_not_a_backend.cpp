// Rule R9: an alias (upload_buffer, readback_buffer, shared_buffer, device_buffer) given a
// non-backend argument is rejected once, with the rule's message, however the buffer is then used.
// expect-error: the backend argument of a buffer is not a backend.*\(rule R9\)
#include <unibuf/unibuf.hpp>

struct app_device {  // the application's own device wrapper, passed where a backend belongs
    unibuf::host_backend* inner = nullptr;
};

void use(unibuf::host_backend& dev, app_device& app) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::upload_buffer<float, app_device> up(app, 16);
#else
    (void)app;
    unibuf::upload_buffer<float, unibuf::host_backend> up(dev, 16);
#endif
    auto w = up.view();
    w[0] = 1.0f;
    up.flush();
    (void)dev;
}
