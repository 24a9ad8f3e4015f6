// Rule R14: basic_buffer_pool's second argument is its locking policy (pool_locking::unlocked or
// pool_locking::mutex); a buffer policy given there by mistake is rejected with one message naming
// the rule.
// expect-error: Locking is not a pool locking policy.*\(rule R14\)
#include <unibuf/unibuf.hpp>

#ifdef UNIBUF_COMPILE_FAIL
using locking = unibuf::access::read_write;
#else
using locking = unibuf::pool_locking::mutex;
#endif

void use(unibuf::host_backend& dev) {
    unibuf::basic_buffer_pool<unibuf::host_backend, locking> pool(dev, unibuf::pool_config::with_bytes(4096));
    auto b = pool.acquire<int>(4);
    (void)b.size();
}
