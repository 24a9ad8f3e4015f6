// Rule R3: a user policy of the access category that lacks host_write is told which traits it lacks.
// expect-error: the access policy lacks host_read/host_write traits.*\(rule R3\)
#include <unibuf/unibuf.hpp>

struct app_access {
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = true;
    static constexpr std::string_view name = "app::access";
};
struct app_access_complete : app_access {
    static constexpr bool host_write = true;
};

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, app_access> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, app_access_complete> buf(dev, 4);
#endif
    (void)buf.size();
}
