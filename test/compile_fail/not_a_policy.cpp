// Rule R3: a type without a policy_category in the policy list (a typo must not become a default).
// expect-error: a buffer policy argument is not a policy.*\(rule R3\)
#include <unibuf/unibuf.hpp>

struct app_flags {  // looks like a setting, is not a policy
    static constexpr bool host_read = true;
};

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::read_only, app_flags> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, unibuf::access::read_only> buf(dev, 4);
#endif
    (void)buf.size();
}
