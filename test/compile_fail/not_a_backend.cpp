// basic_buffer is constrained on Backend: a type that is not a backend is rejected.
// expect-error: Backend
#include <unibuf/unibuf.hpp>

struct not_a_backend {  // has an allocation type, but nothing else a backend needs
    struct allocation {};
};

#ifdef UNIBUF_COMPILE_FAIL
using buf = unibuf::basic_buffer<int, not_a_backend>;
buf::value_type value = 0;
#else
using buf = unibuf::basic_buffer<int, unibuf::host_backend>;
buf::value_type value = 0;
#endif
