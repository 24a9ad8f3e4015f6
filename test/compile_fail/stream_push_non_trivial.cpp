// Rule R1: upload_stream::push<T> / upload<T> copy raw bytes; an element type that is not
// trivially copyable is rejected with the rule, in one error.
// expect-error: upload_stream::upload<T>: T must be trivially copyable \(rule R1\)
#include <unibuf/transfer/upload_stream.hpp>
#include <unibuf/unibuf.hpp>

#include <span>
#include <string>

void use(unibuf::host_backend& dev) {
    unibuf::upload_stream<unibuf::host_backend> up(dev, 4096, 3);
#ifdef UNIBUF_COMPILE_FAIL
    const std::string names[2] = {"a", "b"};
    (void)up.upload(std::span<const std::string>(names));
#else
    const float values[2] = {1.0f, 2.0f};
    (void)up.upload(std::span<const float>(values));
#endif
}
