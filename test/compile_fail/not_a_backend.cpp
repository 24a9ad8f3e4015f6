// Rule R9: basic_buffer's backend argument must be a Backend; a type that is not one is rejected
// once, with the rule's message (not a cascade of errors about each missing backend member).
// expect-error: the backend argument of a buffer is not a backend.*\(rule R9\)
#include <unibuf/unibuf.hpp>

struct not_a_backend {  // has an allocation type, but nothing else a backend needs
    struct allocation {};
};

#ifdef UNIBUF_COMPILE_FAIL
using backend = not_a_backend;
#else
using backend = unibuf::host_backend;
#endif

void use(backend& dev) {
    unibuf::basic_buffer<int, backend> buf(dev, 4);
    (void)buf.size();
    buf.fill(1);
}
