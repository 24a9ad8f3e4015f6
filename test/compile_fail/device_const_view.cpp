// Rule R7: a placement::device buffer has no read-only host view either.
// expect-error: placement::device memory has no host view.*\(rule R7\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::placement::device> buf(dev, 4);
#ifdef UNIBUF_COMPILE_FAIL
    (void)buf.const_view();
#else
    (void)buf.to_vector();
#endif
}
