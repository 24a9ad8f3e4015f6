// Rule R10: state() is tracked only under sync::lazy; on a fenced buffer it is rejected with the
// rule's message.
// expect-error: state\(\) is tracked only under sync::lazy.*\(rule R10\)
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
