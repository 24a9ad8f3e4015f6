// Every valid policy combination, as a compile-time walk shared by the backends' tests.
#pragma once

#include <unibuf/unibuf.hpp>

#include <string>

namespace unibuf_test {

using namespace unibuf;

template <class A, class C, class P, class S>
struct combo {
    using access = A;
    using coherence = C;
    using placement = P;
    using sync = S;
    template <class T, class B>
    using buffer = basic_buffer<T, B, A, C, P, S>;
    static std::string name() {
        return std::string(A::name) + ", " + std::string(C::name) + ", " + std::string(P::name) + ", " +
               std::string(S::name);
    }
};

template <class A, class C, class P, class S>
inline constexpr bool valid_combo = !(C::uncached && A::host_read) &&
                                    !(P::kind == placement_kind::device && S::kind == sync_kind::none) &&
                                    !(P::kind == placement_kind::device && (C::requires_flush || C::uncached));

/// Calls f.template operator()<combo<...>>() for every valid policy combination.
template <class F>
void for_each_combo(F&& f) {
    auto per_sync = [&]<class A, class C, class P>() {
        auto one = [&]<class S>() {
            if constexpr (valid_combo<A, C, P, S>) f.template operator()<combo<A, C, P, S>>();
        };
        one.template operator()<sync::none>();
        one.template operator()<sync::fenced>();
        one.template operator()<sync::lazy>();
    };
    auto per_placement = [&]<class A, class C>() {
        per_sync.template operator()<A, C, placement::host>();
        per_sync.template operator()<A, C, placement::device>();
        per_sync.template operator()<A, C, placement::device_mapped>();
        per_sync.template operator()<A, C, placement::automatic>();
    };
    auto per_coherence = [&]<class A>() {
        per_placement.template operator()<A, coherence::coherent>();
        per_placement.template operator()<A, coherence::explicit_flush>();
        per_placement.template operator()<A, coherence::write_combined>();
    };
    per_coherence.template operator()<access::read_only>();
    per_coherence.template operator()<access::write_only>();
    per_coherence.template operator()<access::read_write>();
}

} // namespace unibuf_test
