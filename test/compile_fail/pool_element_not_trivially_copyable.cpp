// Rule R1 through a pool: acquire<T> of an element type that is not trivially copyable is rejected
// with the rule's one message (before the fix, the buffer type of the result cascaded into more).
// expect-error: element type must be a trivially copyable.*\(rule R1\)
#include <unibuf/unibuf.hpp>
#include <string>

#ifdef UNIBUF_COMPILE_FAIL
using element = std::string;
#else
using element = char;
#endif

void use(unibuf::host_backend& dev) {
    unibuf::buffer_pool<unibuf::host_backend, unibuf::access::read_write> pool(dev, unibuf::pool_config::with_bytes(4096));
    auto b = pool.acquire<element>(4);
    (void)b.size();
    auto batch = pool.begin_batch(256);
    auto c = batch.acquire<char>(4);
    (void)c.size();
}
