// Rule R2: the same policy twice in one policy list.
// expect-error: the same policy is given twice in a buffer.s policy list.*\(rule R2\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::sync::lazy, unibuf::access::read_only, unibuf::sync::lazy> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::sync::lazy, unibuf::access::read_only> buf(dev, 4);
#endif
    (void)buf.to_vector();
}
