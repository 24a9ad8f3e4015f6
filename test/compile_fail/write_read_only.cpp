// Rule R8: write() to an access::read_only buffer.
// expect-error: write\(\) on a buffer whose access policy is access::read_only.*\(rule R8\)
#include <unibuf/unibuf.hpp>
#include <vector>

void use(unibuf::host_backend& dev) {
    unibuf::readback_buffer<int, unibuf::host_backend> buf(dev, 4);
    std::vector<int> host(4);
#ifdef UNIBUF_COMPILE_FAIL
    buf.write(host);
#else
    buf.read(host);
#endif
}
