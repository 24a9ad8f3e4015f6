// Rule R13: a ring needs at least one slot; ring<Buf, 0> is rejected with one message naming the rule.
// expect-error: a ring needs at least one slot.*\(rule R13\)
#include <unibuf/unibuf.hpp>

#ifdef UNIBUF_COMPILE_FAIL
constexpr std::size_t slots = 0;
#else
constexpr std::size_t slots = 2;
#endif

void use(unibuf::host_backend& dev) {
    unibuf::ring<unibuf::basic_buffer<int, unibuf::host_backend>, slots> r(dev, 8);
    auto w = r.claim();
    w.publish();
}
