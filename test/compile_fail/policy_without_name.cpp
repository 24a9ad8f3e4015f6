// Rule R3: a user policy that names its policy_category and its traits but not its `name` is told
// exactly that (not that it "is not a policy").
// expect-error: names its policy_category but lacks its name.*\(rule R3\)
#include <unibuf/unibuf.hpp>

struct app_access {
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = true;
    static constexpr bool host_write = true;
};
struct app_access_named : app_access {
    static constexpr std::string_view name = "app::access";
};

void use(unibuf::host_backend& dev) {
#ifdef UNIBUF_COMPILE_FAIL
    unibuf::basic_buffer<int, unibuf::host_backend, app_access> buf(dev, 4);
#else
    unibuf::basic_buffer<int, unibuf::host_backend, app_access_named> buf(dev, 4);
#endif
    buf.fill(1);
}
