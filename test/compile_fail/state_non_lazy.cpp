// state() exists only under sync::lazy (a requires-clause, so the compiler names the constraint).
// expect-error: sync == (unibuf::)?sync_kind::lazy
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::sync::fenced> buf(dev, 4);
    (void)buf.state();
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::sync::lazy> buf(dev, 4);
    (void)buf.state();
#endif
}
