/// @file allocate.hpp
/// @brief The `allocate` / `try_allocate` pair every backend offers, written once over the
/// backend's own `allocate_impl(req, ec, why)` (which never throws and says why it failed).
#pragma once

#include "../../core/error.hpp"
#include "../../core/memory_request.hpp"

#include <string>
#include <system_error>

namespace unibuf::detail {

/// @brief Base of a backend `Derived` with `allocate_impl(const memory_request&, std::error_code&,
/// std::string& why)` (befriend this class when it is private). Gives the backend its two
/// allocation entry points with one error path.
template <class Derived>
class allocation_entry_points {
public:
    /// @brief Allocates for `req`.
    /// @throws std::system_error carrying the backend's code (out_of_memory, unsupported,
    ///         mapping_failed, invalid_argument, wrong_thread, ...) and its message naming what was
    ///         asked and what was available
    [[nodiscard]] auto allocate(const memory_request& req) {
        std::error_code ec;
        std::string why;
        auto a = self().allocate_impl(req, ec, why);
        if (ec) throw_error(static_cast<errc>(ec.value()), why);
        return a;
    }

    /// @brief Allocates for `req`; an empty allocation and `ec` set on failure, nothing leaked.
    [[nodiscard]] auto try_allocate(const memory_request& req, std::error_code& ec) {
        std::string why;
        return self().allocate_impl(req, ec, why);
    }

    /// @brief As above; on failure `why` also gets the backend's message (what was asked and
    /// what was available), for callers that report it in their own errors (`buffer_pool`).
    [[nodiscard]] auto try_allocate(const memory_request& req, std::error_code& ec, std::string& why) {
        why.clear();
        return self().allocate_impl(req, ec, why);
    }

private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

} // namespace unibuf::detail
