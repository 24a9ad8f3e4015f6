// The type-system matrix: positive and negative static_asserts for every concept of concepts.hpp,
// policy resolution, the aliases, the view types per access mode and the lazy-only members.
// Everything above the runtime tests is checked when this file compiles; the runtime tests check
// that the types which compile also behave (a custom policy on the host backend, the views).
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace unibuf_static_test {  // named: the near-miss policies' unused traits are the point

using unibuf::host_backend;
namespace access = unibuf::access;
namespace coherence = unibuf::coherence;
namespace placement = unibuf::placement;
namespace sync = unibuf::sync;

// ---- user-defined policies ------------------------------------------------------------------

/// A user's own access policy: the host reads and writes (like read_write, under another name).
struct app_scratch_access {
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = true;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "app::scratch_access";
};

/// A user's own write-only access policy.
struct app_stream_access {
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = false;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "app::stream_access";
};

/// A user's own coherence policy: non-coherent cached memory (needs flush/invalidate).
struct app_cached_coherence {
    using policy_category = unibuf::coherence_tag;
    static constexpr bool requires_flush = true;
    static constexpr bool uncached = false;
    static constexpr std::string_view name = "app::cached_coherence";
};

/// A user's own placement and sync policies.
struct app_pinned_placement {
    using policy_category = unibuf::placement_tag;
    static constexpr unibuf::placement_kind kind = unibuf::placement_kind::host;
    static constexpr bool host_pointer = true;
    static constexpr std::string_view name = "app::pinned_placement";
};
struct app_lazy_sync {
    using policy_category = unibuf::sync_tag;
    static constexpr unibuf::sync_kind kind = unibuf::sync_kind::lazy;
    static constexpr std::string_view name = "app::lazy_sync";
};

// ---- near misses: types that must NOT satisfy the concepts ----------------------------------

struct no_category {  // traits without a category
    static constexpr bool host_read = true;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "no_category";
};
struct no_name {  // category and traits, no name
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = true;
    static constexpr bool host_write = true;
};
struct access_without_traits {  // an access category but no host_read/host_write
    using policy_category = unibuf::access_tag;
    static constexpr std::string_view name = "access_without_traits";
};
struct access_neither {  // the host neither reads nor writes: not a usable access mode
    using policy_category = unibuf::access_tag;
    static constexpr bool host_read = false;
    static constexpr bool host_write = false;
    static constexpr std::string_view name = "access_neither";
};
struct access_traits_wrong_tag {  // access traits under the coherence category
    using policy_category = unibuf::coherence_tag;
    static constexpr bool host_read = true;
    static constexpr bool host_write = true;
    static constexpr std::string_view name = "access_traits_wrong_tag";
};
struct unknown_tag {};
struct policy_of_unknown_category {
    using policy_category = unknown_tag;
    static constexpr std::string_view name = "policy_of_unknown_category";
};
struct coherence_without_uncached {
    using policy_category = unibuf::coherence_tag;
    static constexpr bool requires_flush = false;
    static constexpr std::string_view name = "coherence_without_uncached";
};
struct placement_without_host_pointer {
    using policy_category = unibuf::placement_tag;
    static constexpr unibuf::placement_kind kind = unibuf::placement_kind::host;
    static constexpr std::string_view name = "placement_without_host_pointer";
};
struct placement_with_int_kind {  // an int is not a placement_kind (scoped enums do not convert)
    using policy_category = unibuf::placement_tag;
    static constexpr int kind = 0;
    static constexpr bool host_pointer = true;
    static constexpr std::string_view name = "placement_with_int_kind";
};
struct sync_with_placement_kind {
    using policy_category = unibuf::sync_tag;
    static constexpr unibuf::placement_kind kind = unibuf::placement_kind::host;
    static constexpr std::string_view name = "sync_with_placement_kind";
};

// ---- element types ---------------------------------------------------------------------------

struct vec4 {
    float x, y, z, w;
};
struct with_virtual {
    virtual ~with_virtual() = default;
    int v = 0;
};
struct with_copy_ctor {
    with_copy_ctor() = default;
    with_copy_ctor(const with_copy_ctor& o) : v(o.v) {}
    int v = 0;
};
enum class color : std::uint8_t { red, green };

// ---- backends --------------------------------------------------------------------------------

/// Provides everything `Backend` asks for, on paper (never instantiated at run time).
struct paper_backend {
    struct allocation {
        allocation() = default;
        allocation(allocation&&) = default;
        allocation& operator=(allocation&&) = default;
        std::byte* host_data() const noexcept { return nullptr; }
        std::uint64_t size() const noexcept { return 0; }
        const unibuf::allocation_report& report() const noexcept { return report_; }
        unibuf::allocation_report report_;
    };
    struct fence {};
    allocation allocate(const unibuf::memory_request&) { return {}; }
    allocation try_allocate(const unibuf::memory_request&, std::error_code&) { return {}; }
    fence flush(allocation&, std::uint64_t, std::uint64_t) { return {}; }
    void invalidate(allocation&, std::uint64_t, std::uint64_t, std::chrono::nanoseconds) {}
    fence copy(allocation&, std::uint64_t, allocation&, std::uint64_t, std::uint64_t) { return {}; }
    bool wait(const fence&, std::chrono::nanoseconds) const { return true; }
    bool is_complete(const fence&) const { return true; }
    unibuf::device_limits limits() const { return {}; }
    std::string_view name() const { return "paper"; }
};
/// Like paper_backend, but its host_data returns void*: not a backend.
struct void_pointer_backend : paper_backend {
    struct allocation : paper_backend::allocation {
        void* host_data() const noexcept { return nullptr; }
    };
    allocation allocate(const unibuf::memory_request&) { return {}; }
    allocation try_allocate(const unibuf::memory_request&, std::error_code&) { return {}; }
    fence flush(allocation&, std::uint64_t, std::uint64_t) { return {}; }
    void invalidate(allocation&, std::uint64_t, std::uint64_t, std::chrono::nanoseconds) {}
    fence copy(allocation&, std::uint64_t, allocation&, std::uint64_t, std::uint64_t) { return {}; }
};
/// Like paper_backend, but without a bounded wait: not a backend.
struct waitless_backend {
    using allocation = paper_backend::allocation;
    using fence = paper_backend::fence;
    allocation allocate(const unibuf::memory_request&) { return {}; }
    allocation try_allocate(const unibuf::memory_request&, std::error_code&) { return {}; }
    fence flush(allocation&, std::uint64_t, std::uint64_t) { return {}; }
    void invalidate(allocation&, std::uint64_t, std::uint64_t, std::chrono::nanoseconds) {}
    fence copy(allocation&, std::uint64_t, allocation&, std::uint64_t, std::uint64_t) { return {}; }
    bool is_complete(const fence&) const { return true; }
    unibuf::device_limits limits() const { return {}; }
    std::string_view name() const { return "waitless"; }
};
/// Like paper_backend, but with a non-copyable fence: not a backend.
struct move_only_fence_backend : paper_backend {
    struct fence {
        fence() = default;
        fence(fence&&) = default;
        fence& operator=(fence&&) = default;
    };
    fence flush(allocation&, std::uint64_t, std::uint64_t) { return {}; }
    fence copy(allocation&, std::uint64_t, allocation&, std::uint64_t, std::uint64_t) { return {}; }
    bool wait(const fence&, std::chrono::nanoseconds) const { return true; }
    bool is_complete(const fence&) const { return true; }
};

// ---- buffer-like types -----------------------------------------------------------------------

/// Names every Buffer member type but has no allocation(): a Buffer, not DeviceBindable.
struct descriptor_only {
    using value_type = int;
    using backend_type = host_backend;
    using access_policy = access::read_write;
    using coherence_policy = coherence::coherent;
    using placement_policy = placement::host;
    using sync_policy = sync::fenced;
};
/// As descriptor_only, but its backend is not a Backend.
struct descriptor_bad_backend : descriptor_only {
    using backend_type = int;
};

template <class... Ps>
using hbuf = unibuf::basic_buffer<int, host_backend, Ps...>;

// =============================================================================================
// Policy concepts
// =============================================================================================

// AccessPolicy
static_assert(unibuf::AccessPolicy<access::read_only>);
static_assert(unibuf::AccessPolicy<access::write_only>);
static_assert(unibuf::AccessPolicy<access::read_write>);
static_assert(unibuf::AccessPolicy<app_scratch_access>);
static_assert(unibuf::AccessPolicy<app_stream_access>);
static_assert(!unibuf::AccessPolicy<coherence::coherent>);
static_assert(!unibuf::AccessPolicy<placement::host>);
static_assert(!unibuf::AccessPolicy<sync::lazy>);
static_assert(!unibuf::AccessPolicy<int>);
static_assert(!unibuf::AccessPolicy<void>);
static_assert(!unibuf::AccessPolicy<unibuf::access_tag>);
static_assert(!unibuf::AccessPolicy<no_category>);
static_assert(!unibuf::AccessPolicy<no_name>);
static_assert(!unibuf::AccessPolicy<access_without_traits>);
static_assert(!unibuf::AccessPolicy<access_neither>);
static_assert(!unibuf::AccessPolicy<access_traits_wrong_tag>);

// CoherencePolicy
static_assert(unibuf::CoherencePolicy<coherence::coherent>);
static_assert(unibuf::CoherencePolicy<coherence::explicit_flush>);
static_assert(unibuf::CoherencePolicy<coherence::write_combined>);
static_assert(unibuf::CoherencePolicy<app_cached_coherence>);
static_assert(!unibuf::CoherencePolicy<access::read_write>);
static_assert(!unibuf::CoherencePolicy<sync::none>);
static_assert(!unibuf::CoherencePolicy<double>);
static_assert(!unibuf::CoherencePolicy<coherence_without_uncached>);
static_assert(!unibuf::CoherencePolicy<access_traits_wrong_tag>);  // right tag, wrong traits

// PlacementPolicy
static_assert(unibuf::PlacementPolicy<placement::host>);
static_assert(unibuf::PlacementPolicy<placement::device>);
static_assert(unibuf::PlacementPolicy<placement::device_mapped>);
static_assert(unibuf::PlacementPolicy<placement::automatic>);
static_assert(unibuf::PlacementPolicy<app_pinned_placement>);
static_assert(!unibuf::PlacementPolicy<sync::fenced>);  // has `kind`, but the wrong category
static_assert(!unibuf::PlacementPolicy<coherence::coherent>);
static_assert(!unibuf::PlacementPolicy<unibuf::placement_kind>);
static_assert(!unibuf::PlacementPolicy<placement_without_host_pointer>);
static_assert(!unibuf::PlacementPolicy<placement_with_int_kind>);

// SyncPolicy
static_assert(unibuf::SyncPolicy<sync::none>);
static_assert(unibuf::SyncPolicy<sync::fenced>);
static_assert(unibuf::SyncPolicy<sync::lazy>);
static_assert(unibuf::SyncPolicy<app_lazy_sync>);
static_assert(!unibuf::SyncPolicy<placement::device>);  // has `kind`, but the wrong category
static_assert(!unibuf::SyncPolicy<access::read_only>);
static_assert(!unibuf::SyncPolicy<unibuf::sync_kind>);
static_assert(!unibuf::SyncPolicy<sync_with_placement_kind>);

// Policy: any of the four, nothing else
template <class... Ps>
inline constexpr bool all_policies = (unibuf::Policy<Ps> && ...);
template <class... Ps>
inline constexpr bool no_policies = (!unibuf::Policy<Ps> && ...);
static_assert(all_policies<access::read_only, access::write_only, access::read_write, coherence::coherent,
                           coherence::explicit_flush, coherence::write_combined, placement::host, placement::device,
                           placement::device_mapped, placement::automatic, sync::none, sync::fenced, sync::lazy,
                           app_scratch_access, app_stream_access, app_cached_coherence, app_pinned_placement,
                           app_lazy_sync>);
static_assert(no_policies<int, void, vec4, std::string, unibuf::access_tag, unibuf::sync_kind, no_category, no_name,
                          access_without_traits, access_neither, policy_of_unknown_category,
                          coherence_without_uncached, placement_without_host_pointer, sync_with_placement_kind,
                          unibuf::default_policies, host_backend>);

// PolicyOf, the base of the four
static_assert(unibuf::PolicyOf<access::read_only, unibuf::access_tag>);
static_assert(!unibuf::PolicyOf<access::read_only, unibuf::sync_tag>);
static_assert(unibuf::PolicyOf<policy_of_unknown_category, unknown_tag>);

// Each built-in policy names itself after its namespace.
static_assert(access::write_only::name == "access::write_only");
static_assert(coherence::write_combined::name == "coherence::write_combined");
static_assert(placement::device_mapped::name == "placement::device_mapped");
static_assert(sync::lazy::name == "sync::lazy");

// =============================================================================================
// BufferElement (rule R1)
// =============================================================================================

static_assert(unibuf::BufferElement<int>);
static_assert(unibuf::BufferElement<float>);
static_assert(unibuf::BufferElement<std::byte>);
static_assert(unibuf::BufferElement<vec4>);
static_assert(unibuf::BufferElement<std::array<float, 4>>);
static_assert(unibuf::BufferElement<color>);
static_assert(unibuf::BufferElement<int*>);
static_assert(!unibuf::BufferElement<const int>);
static_assert(!unibuf::BufferElement<volatile int>);
static_assert(!unibuf::BufferElement<const vec4>);
static_assert(!unibuf::BufferElement<int[4]>);
static_assert(!unibuf::BufferElement<int&>);
static_assert(!unibuf::BufferElement<void>);
static_assert(!unibuf::BufferElement<int()>);
static_assert(!unibuf::BufferElement<std::string>);
static_assert(!unibuf::BufferElement<std::vector<int>>);
static_assert(!unibuf::BufferElement<with_virtual>);
static_assert(!unibuf::BufferElement<with_copy_ctor>);

// =============================================================================================
// Backend
// =============================================================================================

static_assert(unibuf::Backend<host_backend>);
static_assert(unibuf::Backend<paper_backend>);
static_assert(!unibuf::Backend<int>);
static_assert(!unibuf::Backend<std::vector<int>>);
static_assert(!unibuf::Backend<void_pointer_backend>);
static_assert(!unibuf::Backend<waitless_backend>);
static_assert(!unibuf::Backend<move_only_fence_backend>);
static_assert(!unibuf::Backend<hbuf<>>);  // a buffer is not a backend

// basic_buffer is a buffer type only on a Backend. The canonical class is constrained on Backend;
// basic_buffer with a non-backend names a stand-in instead, rejected once with rule R9 when it is
// used (compile_fail/not_a_backend.cpp), so it is not a basic_buffer_of.
template <class X>
inline constexpr bool is_buffer_of = false;
template <class T, class B, class A, class C, class P, class S>
inline constexpr bool is_buffer_of<unibuf::basic_buffer_of<T, B, A, C, P, S>> = true;
template <class B>
concept buffer_on = is_buffer_of<unibuf::basic_buffer<int, B>>;
static_assert(buffer_on<host_backend>);
static_assert(buffer_on<paper_backend>);
static_assert(!buffer_on<int>);
static_assert(!buffer_on<waitless_backend>);
template <class B>
concept buffer_of_on = requires {
    typename unibuf::basic_buffer_of<int, B, access::read_write, coherence::coherent, placement::automatic, sync::fenced>;
};
static_assert(buffer_of_on<host_backend>);
static_assert(buffer_of_on<paper_backend>);
static_assert(!buffer_of_on<int>);
static_assert(!buffer_of_on<waitless_backend>);

// =============================================================================================
// Buffer concepts
// =============================================================================================

using rw_host = hbuf<access::read_write, placement::host>;
using ro_host = hbuf<access::read_only, placement::host>;
using wo_host = hbuf<access::write_only, placement::host>;
using wo_wc = hbuf<access::write_only, coherence::write_combined>;
using ro_mapped = hbuf<access::read_only, placement::device_mapped>;
using rw_device = hbuf<placement::device>;
using ro_device = hbuf<access::read_only, placement::device, sync::lazy>;
using wo_device = hbuf<access::write_only, placement::device>;
using rw_none = hbuf<sync::none>;
using rw_fenced = hbuf<sync::fenced>;
using rw_lazy = hbuf<sync::lazy>;
using custom_buf = hbuf<app_scratch_access, app_cached_coherence>;

// Buffer
static_assert(unibuf::Buffer<rw_host>);
static_assert(unibuf::Buffer<wo_wc>);
static_assert(unibuf::Buffer<rw_device>);
static_assert(unibuf::Buffer<custom_buf>);
static_assert(unibuf::Buffer<unibuf::basic_buffer<vec4, paper_backend>>);
static_assert(unibuf::Buffer<descriptor_only>);
static_assert(!unibuf::Buffer<descriptor_bad_backend>);
static_assert(!unibuf::Buffer<int>);
static_assert(!unibuf::Buffer<std::vector<int>>);
static_assert(!unibuf::Buffer<std::span<int>>);
static_assert(!unibuf::Buffer<host_backend>);

// HostReadable / HostWritable (rule R8)
static_assert(unibuf::HostReadable<rw_host> && unibuf::HostWritable<rw_host>);
static_assert(unibuf::HostReadable<ro_host> && !unibuf::HostWritable<ro_host>);
static_assert(!unibuf::HostReadable<wo_host> && unibuf::HostWritable<wo_host>);
static_assert(!unibuf::HostReadable<wo_wc> && unibuf::HostWritable<wo_wc>);
static_assert(unibuf::HostReadable<rw_device> && unibuf::HostWritable<rw_device>);  // staged, still allowed
static_assert(unibuf::HostReadable<ro_device> && !unibuf::HostWritable<ro_device>);
static_assert(!unibuf::HostReadable<hbuf<app_stream_access>> && unibuf::HostWritable<hbuf<app_stream_access>>);
static_assert(!unibuf::HostReadable<int> && !unibuf::HostWritable<int>);

// HostViewable (rule R7)
static_assert(unibuf::HostViewable<rw_host>);
static_assert(unibuf::HostViewable<ro_mapped>);
static_assert(unibuf::HostViewable<hbuf<>>);  // automatic
static_assert(unibuf::HostViewable<hbuf<app_pinned_placement>>);
static_assert(!unibuf::HostViewable<rw_device>);
static_assert(!unibuf::HostViewable<ro_device>);
static_assert(!unibuf::HostViewable<wo_device>);
static_assert(!unibuf::HostViewable<int>);

// DeviceBindable: every placement, every access mode
static_assert(unibuf::DeviceBindable<rw_host>);
static_assert(unibuf::DeviceBindable<wo_wc>);
static_assert(unibuf::DeviceBindable<ro_host>);
static_assert(unibuf::DeviceBindable<rw_device>);
static_assert(unibuf::DeviceBindable<custom_buf>);
static_assert(!unibuf::DeviceBindable<descriptor_only>);
static_assert(!unibuf::DeviceBindable<int>);

// LazySynced
static_assert(unibuf::LazySynced<rw_lazy>);
static_assert(unibuf::LazySynced<ro_device>);
static_assert(unibuf::LazySynced<hbuf<app_lazy_sync>>);
static_assert(!unibuf::LazySynced<rw_fenced>);
static_assert(!unibuf::LazySynced<rw_none>);
static_assert(!unibuf::LazySynced<hbuf<>>);  // default sync is fenced
static_assert(!unibuf::LazySynced<descriptor_only>);

// =============================================================================================
// policy_set: any order, defaults, custom policies
// =============================================================================================

template <class Set, class A, class C, class P, class S>
inline constexpr bool resolves_to = std::is_same_v<typename Set::access, A> &&
                                    std::is_same_v<typename Set::coherence, C> &&
                                    std::is_same_v<typename Set::placement, P> && std::is_same_v<typename Set::sync, S>;

/// All 24 orders of four policies resolve to the same four types.
template <class A, class C, class P, class S>
constexpr bool every_order_resolves() {
    using unibuf::policy_set;
    return resolves_to<policy_set<A, C, P, S>, A, C, P, S> && resolves_to<policy_set<A, C, S, P>, A, C, P, S> &&
           resolves_to<policy_set<A, P, C, S>, A, C, P, S> && resolves_to<policy_set<A, P, S, C>, A, C, P, S> &&
           resolves_to<policy_set<A, S, C, P>, A, C, P, S> && resolves_to<policy_set<A, S, P, C>, A, C, P, S> &&
           resolves_to<policy_set<C, A, P, S>, A, C, P, S> && resolves_to<policy_set<C, A, S, P>, A, C, P, S> &&
           resolves_to<policy_set<C, P, A, S>, A, C, P, S> && resolves_to<policy_set<C, P, S, A>, A, C, P, S> &&
           resolves_to<policy_set<C, S, A, P>, A, C, P, S> && resolves_to<policy_set<C, S, P, A>, A, C, P, S> &&
           resolves_to<policy_set<P, A, C, S>, A, C, P, S> && resolves_to<policy_set<P, A, S, C>, A, C, P, S> &&
           resolves_to<policy_set<P, C, A, S>, A, C, P, S> && resolves_to<policy_set<P, C, S, A>, A, C, P, S> &&
           resolves_to<policy_set<P, S, A, C>, A, C, P, S> && resolves_to<policy_set<P, S, C, A>, A, C, P, S> &&
           resolves_to<policy_set<S, A, C, P>, A, C, P, S> && resolves_to<policy_set<S, A, P, C>, A, C, P, S> &&
           resolves_to<policy_set<S, C, A, P>, A, C, P, S> && resolves_to<policy_set<S, C, P, A>, A, C, P, S> &&
           resolves_to<policy_set<S, P, A, C>, A, C, P, S> && resolves_to<policy_set<S, P, C, A>, A, C, P, S>;
}
static_assert(every_order_resolves<access::write_only, coherence::write_combined, placement::device_mapped, sync::none>());
static_assert(every_order_resolves<access::read_only, coherence::explicit_flush, placement::host, sync::lazy>());
static_assert(every_order_resolves<app_scratch_access, app_cached_coherence, app_pinned_placement, app_lazy_sync>());

// The buffer exposes the same resolution, whatever the order of its arguments.
static_assert(std::is_same_v<hbuf<sync::lazy, access::read_only>::access_policy, access::read_only>);
static_assert(std::is_same_v<hbuf<sync::lazy, access::read_only>::sync_policy, sync::lazy>);
static_assert(std::is_same_v<hbuf<access::read_only, sync::lazy>::access_policy, access::read_only>);
static_assert(std::is_same_v<hbuf<access::read_only, sync::lazy>::sync_policy, sync::lazy>);

// Defaults for missing categories.
using defaults = unibuf::default_policies;
static_assert(std::is_same_v<defaults::access, access::read_write>);
static_assert(std::is_same_v<defaults::coherence, coherence::coherent>);
static_assert(std::is_same_v<defaults::placement, placement::automatic>);
static_assert(std::is_same_v<defaults::sync, sync::fenced>);
static_assert(resolves_to<unibuf::policy_set<>, defaults::access, defaults::coherence, defaults::placement, defaults::sync>);
static_assert(resolves_to<unibuf::policy_set<sync::lazy>, defaults::access, defaults::coherence, defaults::placement,
                          sync::lazy>);
static_assert(resolves_to<unibuf::policy_set<placement::device, access::read_only>, access::read_only,
                          defaults::coherence, placement::device, defaults::sync>);
static_assert(resolves_to<unibuf::policy_set<coherence::explicit_flush, app_stream_access>, app_stream_access,
                          coherence::explicit_flush, defaults::placement, defaults::sync>);
static_assert(std::is_same_v<hbuf<>::access_policy, defaults::access> &&
              std::is_same_v<hbuf<>::coherence_policy, defaults::coherence> &&
              std::is_same_v<hbuf<>::placement_policy, defaults::placement> &&
              std::is_same_v<hbuf<>::sync_policy, defaults::sync>);
static_assert(unibuf::policy_set<access::read_only, sync::none>::all_policies &&
              unibuf::policy_set<access::read_only, sync::none>::no_duplicates &&
              unibuf::policy_set<access::read_only, sync::none>::no_conflicts);

// =============================================================================================
// memory_request_for: traits -> run-time request
// =============================================================================================

template <class... Ps>
constexpr unibuf::memory_request req(std::uint64_t bytes) {
    return unibuf::memory_request_for<unibuf::policy_set<Ps...>>(bytes);
}
constexpr bool same_request(const unibuf::memory_request& a, const unibuf::memory_request& b) {
    return a.size_bytes == b.size_bytes && a.host_read == b.host_read && a.host_write == b.host_write &&
           a.explicit_flush == b.explicit_flush && a.write_combined == b.write_combined &&
           a.placement == b.placement && a.sync == b.sync && a.device_write == b.device_write;
}

static_assert(req<>(256).size_bytes == 256);
static_assert(req<>(0).size_bytes == 0);
static_assert(req<>(1).host_read && req<>(1).host_write);
static_assert(!req<>(1).explicit_flush && !req<>(1).write_combined);
static_assert(req<>(1).placement == unibuf::placement_kind::automatic && req<>(1).sync == unibuf::sync_kind::fenced);
static_assert(!req<access::write_only>(1).host_read && req<access::write_only>(1).host_write);
static_assert(req<access::read_only>(1).host_read && !req<access::read_only>(1).host_write);
static_assert(req<coherence::explicit_flush>(1).explicit_flush && !req<coherence::explicit_flush>(1).write_combined);
static_assert(req<access::write_only, coherence::write_combined>(1).write_combined &&
              !req<access::write_only, coherence::write_combined>(1).explicit_flush);
static_assert(req<placement::host>(1).placement == unibuf::placement_kind::host);
static_assert(req<placement::device>(1).placement == unibuf::placement_kind::device);
static_assert(req<placement::device_mapped>(1).placement == unibuf::placement_kind::device_mapped);
static_assert(req<sync::none>(1).sync == unibuf::sync_kind::none);
static_assert(req<sync::lazy>(1).sync == unibuf::sync_kind::lazy);
static_assert(req<app_cached_coherence, app_stream_access>(8).explicit_flush &&
              !req<app_cached_coherence, app_stream_access>(8).host_read);
// Order does not change the request; the buffer's request_for multiplies by sizeof(T).
static_assert(same_request(req<sync::none, placement::host, access::read_only>(64),
                           req<access::read_only, placement::host, sync::none>(64)));
static_assert(unibuf::basic_buffer<vec4, host_backend>::request_for(10).size_bytes == 10 * sizeof(vec4));
static_assert(same_request(wo_wc::request_for(3), req<access::write_only, coherence::write_combined>(3 * sizeof(int))));

// =============================================================================================
// Aliases resolve to the documented policies
// =============================================================================================

template <class Buf, class A, class C, class P, class S>
inline constexpr bool has_policies = std::is_same_v<typename Buf::access_policy, A> &&
                                     std::is_same_v<typename Buf::coherence_policy, C> &&
                                     std::is_same_v<typename Buf::placement_policy, P> &&
                                     std::is_same_v<typename Buf::sync_policy, S>;

static_assert(has_policies<unibuf::upload_buffer<float, host_backend>, access::write_only, coherence::write_combined,
                           placement::automatic, sync::fenced>);
static_assert(has_policies<unibuf::readback_buffer<float, host_backend>, access::read_only, coherence::coherent,
                           placement::host, sync::fenced>);
static_assert(has_policies<unibuf::shared_buffer<float, host_backend>, access::read_write, coherence::coherent,
                           placement::automatic, sync::lazy>);
static_assert(has_policies<unibuf::device_buffer<float, host_backend>, access::read_write, coherence::coherent,
                           placement::device, sync::lazy>);
static_assert(std::is_same_v<unibuf::upload_buffer<vec4, host_backend>::value_type, vec4>);
static_assert(std::is_same_v<unibuf::device_buffer<vec4, host_backend>::backend_type, host_backend>);
static_assert(unibuf::upload_buffer<int, host_backend>::request_for(1).write_combined);
static_assert(unibuf::device_buffer<int, host_backend>::request_for(1).placement == unibuf::placement_kind::device);

// =============================================================================================
// Views per access mode
// =============================================================================================

template <class Buf>
using view_t = decltype(std::declval<Buf&>().view());
template <class Buf>
using data_t = decltype(std::declval<const Buf&>().data());

static_assert(std::is_same_v<view_t<rw_host>, std::span<int>>);
static_assert(std::is_same_v<view_t<ro_host>, std::span<const int>>);
static_assert(std::is_same_v<view_t<wo_host>, unibuf::write_only_view<int>>);
static_assert(std::is_same_v<view_t<wo_wc>, unibuf::write_only_view<int>>);
static_assert(std::is_same_v<view_t<unibuf::upload_buffer<vec4, host_backend>>, unibuf::write_only_view<vec4>>);
static_assert(std::is_same_v<view_t<unibuf::readback_buffer<vec4, host_backend>>, std::span<const vec4>>);
static_assert(std::is_same_v<view_t<unibuf::shared_buffer<vec4, host_backend>>, std::span<vec4>>);
static_assert(std::is_same_v<view_t<custom_buf>, std::span<int>>);
static_assert(std::is_same_v<view_t<hbuf<app_stream_access>>, unibuf::write_only_view<int>>);
static_assert(std::is_same_v<decltype(std::declval<rw_host&>().const_view()), std::span<const int>>);
static_assert(std::is_same_v<decltype(std::declval<ro_host&>().const_view()), std::span<const int>>);
static_assert(std::is_same_v<data_t<rw_host>, int*>);
static_assert(std::is_same_v<data_t<wo_host>, int*>);
static_assert(std::is_same_v<data_t<ro_host>, const int*>);

// The write-only view: elements are assignable from T, never from another element (that reads).
using wo_ref = unibuf::write_only_ref<int>;
static_assert(std::is_same_v<decltype(std::declval<const unibuf::write_only_view<int>&>()[0]), wo_ref>);
static_assert(std::is_assignable_v<wo_ref&, const int&>);
static_assert(std::is_assignable_v<wo_ref&, int>);
// Assigning another element (`w[1] = w[0]`) is declared so that it can be rejected with rule R8
// when used (compile_fail/write_only_element_copy.cpp), not with a bare "deleted function".
static_assert(std::is_copy_constructible_v<wo_ref>);  // handing the proxy around reads nothing
static_assert(std::is_same_v<decltype(std::declval<const unibuf::write_only_view<int>&>().data()), int*>);

// =============================================================================================
// Lazy-only members work only under sync::lazy
// =============================================================================================

// state(), sync_to_device(), sync_to_host(), mark_host_dirty() and mark_device_dirty() are
// declared on every buffer, so that a use on a fenced or unsynchronized buffer is rejected with
// rule R10's message (compile_fail/state_non_lazy.cpp, lazy_member_non_lazy.cpp) rather than an
// overload error. Whether a buffer has them is LazySynced.
template <class Buf>
concept has_state = requires(const Buf& b) {
    { b.state() } -> std::same_as<unibuf::buffer_state>;
};
template <class Buf>
concept has_lazy_controls = requires(Buf& b) {
    b.sync_to_device();
    b.sync_to_host();
    b.mark_host_dirty();
    b.mark_device_dirty();
};

static_assert(has_state<rw_lazy> && has_lazy_controls<rw_lazy>);
static_assert(has_state<ro_device> && has_lazy_controls<ro_device>);
static_assert(has_state<unibuf::shared_buffer<int, host_backend>>);
static_assert(has_state<unibuf::device_buffer<int, host_backend>>);
static_assert(has_state<hbuf<app_lazy_sync>>);
static_assert(unibuf::LazySynced<rw_lazy> && unibuf::LazySynced<ro_device> && unibuf::LazySynced<hbuf<app_lazy_sync>>);
static_assert(!unibuf::LazySynced<rw_fenced> && !unibuf::LazySynced<rw_none>);
static_assert(!unibuf::LazySynced<unibuf::upload_buffer<int, host_backend>>);
static_assert(!unibuf::LazySynced<unibuf::readback_buffer<int, host_backend>>);

// Buffers are move-only handles.
static_assert(!std::is_copy_constructible_v<rw_host> && !std::is_copy_assignable_v<rw_host>);
static_assert(std::is_nothrow_move_constructible_v<rw_host> && std::is_nothrow_move_assignable_v<rw_host>);
static_assert(std::is_nothrow_move_constructible_v<rw_device>);

// =============================================================================================
// Run-time checks of types the matrix accepts
// =============================================================================================

TEST(StaticMatrix, CustomAccessAndCoherencePoliciesWorkOnTheHostBackend) {
    host_backend dev;  // simulates non-coherent memory for requires_flush policies
    custom_buf buf(dev, 100);
    EXPECT_EQ(buf.report().chosen, unibuf::placement_kind::host);
    EXPECT_FALSE(buf.report().host_coherent) << "app_cached_coherence asks for explicit flushes: " << buf.report().reason;

    std::vector<int> src(100);
    std::iota(src.begin(), src.end(), 1);
    buf.write(src);  // fenced: flushed at once

    // A device kernel sees the flushed bytes and writes back; read() invalidates before reading.
    unibuf::host_kernel negate = [](const unibuf::host_invocation& in) {
        for (int& x : in.as<int>(0)) x = -x;
    };
    unibuf::dispatch(dev, negate, {1}, {}, unibuf::bind(buf));
    std::vector<int> out(100);
    buf.read(out);
    for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], -static_cast<int>(i + 1)) << "element " << i;

    std::span<int> v = buf.view();  // read_write-like custom access: a mutable span
    EXPECT_EQ(v.size(), 100u);
    EXPECT_EQ(v[99], -100);
}

TEST(StaticMatrix, CustomLazySyncTracksState) {
    host_backend dev;
    hbuf<app_lazy_sync, app_pinned_placement> buf(dev, 8);
    EXPECT_EQ(buf.state(), unibuf::buffer_state::uninitialized);
    buf.fill(3);
    EXPECT_EQ(buf.state(), unibuf::buffer_state::host_only);
    unibuf::host_kernel add_one = [](const unibuf::host_invocation& in) {
        for (int& x : in.as<int>(0)) x += 1;
    };
    unibuf::dispatch(dev, add_one, {1}, {}, unibuf::bind(buf));
    EXPECT_EQ(buf.state(), unibuf::buffer_state::device_dirty);
    EXPECT_EQ(buf.to_vector(), std::vector<int>(8, 4));
    EXPECT_EQ(buf.state(), unibuf::buffer_state::synchronized);
}

TEST(StaticMatrix, WriteOnlyViewStoresWhatTheDeviceThenReads) {
    host_backend dev;
    unibuf::upload_buffer<int, host_backend> up(dev, 16);
    unibuf::readback_buffer<int, host_backend> down(dev, 16);
    auto v = up.view();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int>(i * i);
    const std::array<int, 2> tail{-1, -2};
    v.assign(tail, 14);
    up.flush();  // view writes are not seen by the buffer: the caller flushes (a no-op here)

    unibuf::host_kernel copy = [](const unibuf::host_invocation& in) {
        auto s = in.as<int>(0);
        auto d = in.as<int>(1);
        std::copy(s.begin(), s.end(), d.begin());
    };
    unibuf::dispatch(dev, copy, {1}, {}, unibuf::bind(up, unibuf::usage::read),
                           unibuf::bind(down, unibuf::usage::write));
    const std::vector<int> got = down.to_vector();
    for (std::size_t i = 0; i < 14; ++i) ASSERT_EQ(got[i], static_cast<int>(i * i)) << "element " << i;
    EXPECT_EQ(got[14], -1);
    EXPECT_EQ(got[15], -2);
    std::span<const int> r = down.view();  // read_only: a const span
    EXPECT_EQ(r[3], 9);
}

TEST(StaticMatrix, RequestForMatchesWhatTheHostBackendReports) {
    host_backend dev;
    unibuf::device_buffer<vec4, host_backend> d(dev, 5);
    EXPECT_EQ(d.size_bytes(), 5 * sizeof(vec4));
    EXPECT_EQ(d.report().requested, unibuf::placement_kind::device);
    EXPECT_FALSE(d.report().zero_copy);
    unibuf::shared_buffer<vec4, host_backend> s(dev, 5);
    EXPECT_EQ(s.report().requested, unibuf::placement_kind::automatic);
    EXPECT_TRUE(s.report().zero_copy);
    // Both allocations count against the backend: device placement keeps a staging copy too.
    EXPECT_EQ(dev.bytes_in_use(), 3 * 5 * sizeof(vec4));
}

} // namespace unibuf_static_test
