// Rule R13: a ring's slot type must be a buffer (the Buffer concept); ring<int, 3> is rejected with
// one message naming the rule, not with the concept's unsatisfied requirements.
// expect-error: ring<Buf, N>: Buf is not a buffer type.*\(rule R13\)
#include <unibuf/unibuf.hpp>

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::ring<int, 3> r(dev, 8);
#else
    unibuf::ring<unibuf::basic_buffer<int, unibuf::host_backend>, 3> r(dev, 8);
#endif
    auto w = r.claim();
    w.publish();
    auto rd = r.read();
    rd.release();
}
