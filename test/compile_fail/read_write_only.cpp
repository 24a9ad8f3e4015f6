// Rule R8: read() of an access::write_only buffer (its memory may be write-combined).
// expect-error: read\(\) on a buffer whose access policy is access::write_only.*\(rule R8\)
#include <unibuf/unibuf.hpp>
#include <vector>

void use(unibuf::host_backend& dev) {
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::write_only> buf(dev, 4);
    std::vector<int> host(4);
#ifdef UNIBUF_COMPILE_FAIL
    buf.read(host);
#else
    buf.write(host);
#endif
}
