// Rule R8: const_view() reads, so an access::write_only buffer has none.
// expect-error: const_view\(\) reads the buffer, but its access policy is access::write_only.*\(rule R8\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::write_only, unibuf::placement::host> buf(dev, 4);
#ifdef UNIBUF_COMPILE_FAIL
    (void)buf.const_view();
#else
    (void)buf.view();
#endif
}
