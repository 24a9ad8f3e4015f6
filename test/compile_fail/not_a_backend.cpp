// basic_buffer is constrained on Backend: a type that is not a backend is rejected by the concept.
// expect-error: (requires +Backend<B>|does not satisfy 'Backend')
// allow-multiple-errors: the Backend constraint on basic_buffer fails at the declaration, and g++ reports each use of the invalid type too
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
}
