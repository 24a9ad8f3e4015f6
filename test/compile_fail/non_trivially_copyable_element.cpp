// Rule R1: a non-trivially-copyable element type (its bytes cannot be copied as raw memory).
// expect-error: element type must be a trivially copyable.*\(rule R1\)
#include <unibuf/unibuf.hpp>
#include <string>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<std::string, unibuf::host_backend> buf(dev, 4);
#else
    unibuf::basic_buffer<char, unibuf::host_backend> buf(dev, 4);
#endif
    (void)buf.size();
}
