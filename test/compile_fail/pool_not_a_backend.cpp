// Rule R9 for pools: a pool's backend argument must satisfy the Backend concept; anything else is
// rejected with one message naming the rule (not a constraint failure on the alias and its
// follow-ups), however the pool is then used.
// expect-error: the backend argument of a pool is not a backend.*\(rule R9\)
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
    unibuf::buffer_pool<backend, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(4096));
    auto b = pool.acquire<int>(4);
    (void)b.size();
    (void)pool.stats();
}
