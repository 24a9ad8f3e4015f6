/// @file error.hpp
/// @brief unibuf's error category, error codes and the throwing helper.
///
/// Recoverable conditions are reported as `std::system_error` carrying an `unibuf::errc` and a
/// message that says what was asked and what was available. Hot paths have `try_` variants that
/// return `std::error_code` instead of throwing (`try_create`, `try_write`, `try_read`, `try_acquire`,
/// `try_push`, ...).
#pragma once

#include "config.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <system_error>
#include <type_traits>

namespace unibuf {

/// @brief Error conditions unibuf reports.
enum class errc {
    out_of_memory = 1,     ///< the device or heap could not satisfy an allocation
    mapping_failed,        ///< memory could not be mapped into the host address space
    unsupported,           ///< the device or driver lacks a feature the request needs
    capacity_exceeded,     ///< a pool or ring has no room for the request
    device_lost,           ///< the device was lost (driver reset, removal)
    timeout,               ///< a bounded wait ran out
    out_of_range,          ///< an offset/count lies outside the buffer
    invalid_argument,      ///< a request that can never succeed (zero size, bad alignment, ...)
    wrong_thread,          ///< a call that must run on a context's thread ran elsewhere
};

namespace detail {
class error_category_impl final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "unibuf"; }
    [[nodiscard]] std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::out_of_memory: return "out of memory";
            case errc::mapping_failed: return "mapping failed";
            case errc::unsupported: return "unsupported";
            case errc::capacity_exceeded: return "capacity exceeded";
            case errc::device_lost: return "device lost";
            case errc::timeout: return "timeout";
            case errc::out_of_range: return "out of range";
            case errc::invalid_argument: return "invalid argument";
            case errc::wrong_thread: return "called from the wrong thread";
        }
        return "unknown unibuf error";
    }
};
} // namespace detail

/// @brief The error category of all unibuf errors (one instance per program).
[[nodiscard]] inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

/// @brief Makes an error_code in unibuf's category (found by ADL for `std::error_code ec = errc::x`).
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

namespace detail {
/// @brief Whole milliseconds of `d` as text, for the "within N ms" of timeout messages.
[[nodiscard]] inline std::string ms_text(std::chrono::nanoseconds d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

/// @brief "N elements of S bytes": how every size message names a request of `count` elements of
/// `element_size` bytes (the element count the caller gave, never a byte count computed from it).
[[nodiscard]] inline std::string elements_text(std::uint64_t count, std::uint64_t element_size) {
    return std::to_string(count) + (count == 1 ? " element of " : " elements of ") + std::to_string(element_size) +
           (element_size == 1 ? " byte" : " bytes");
}

/// @brief "N elements of S bytes: the byte size overflows 64 bits (at most M elements of S bytes
/// fit)": the text of an `errc::out_of_range` for a request whose byte size does not fit.
[[nodiscard]] inline std::string byte_size_overflow_text(std::uint64_t count, std::uint64_t element_size) {
    const std::uint64_t most = element_size == 0 ? ~std::uint64_t{0} : ~std::uint64_t{0} / element_size;
    return elements_text(count, element_size) + ": the byte size overflows 64 bits (at most " +
           elements_text(most, element_size) + " fit)";
}
} // namespace detail

/// @brief Throws `std::system_error(e, what)`; aborts with the message when exceptions are off.
[[noreturn]] inline void throw_error(errc e, const std::string& what) {
#if UNIBUF_EXCEPTIONS
    throw std::system_error(make_error_code(e), what);
#else
    std::fprintf(stderr, "unibuf: %s: %s\n", error_category().message(static_cast<int>(e)).c_str(),
                 what.c_str());
    std::abort();
#endif
}

namespace detail {
/// @brief Runs `f` and returns the code of the `std::system_error` it threw (empty when it
/// returned; `invalid_argument` for any other exception): the one body of the `try_` variants
/// that wrap a throwing call. Without exceptions `f` aborts on its own errors, so it just runs.
template <class F>
[[nodiscard]] std::error_code code_of(F&& f) noexcept {
#if UNIBUF_EXCEPTIONS
    try {
        f();
    } catch (const std::system_error& e) {
        return e.code();
    } catch (...) {
        return make_error_code(errc::invalid_argument);
    }
#else
    f();
#endif
    return {};
}

/// @brief The message `s` was made with: `what()` less the ": " and code message that
/// `std::system_error` appends (all of `what()` where that tail is absent). For a message that
/// quotes another error and is itself a `std::system_error` with the same code, so that the code's
/// message is said once.
[[nodiscard]] inline std::string message_of(const std::system_error& s) {
    std::string w = s.what();
    const std::string tail = ": " + s.code().message();
    if (w.size() >= tail.size() && w.compare(w.size() - tail.size(), tail.size(), tail) == 0)
        w.resize(w.size() - tail.size());
    return w;
}

/// @brief A new exception object equal to the `std::system_error` in `e` (same code, same
/// `what()`, its own message string), or `e` itself for any other exception or none. For handing
/// one error to several threads: an exception object shared through `std::exception_ptr` is freed
/// by whichever thread drops the last reference, ordered only by atomics inside libstdc++.so,
/// which ThreadSanitizer does not see (it reports the free as racing with another thread's read
/// of the message); with one object per receiver, each is read and freed along one hand-off.
[[nodiscard]] inline std::exception_ptr own_copy(const std::exception_ptr& e) {
#if UNIBUF_EXCEPTIONS
    if (!e) return e;
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error& s) {
        return std::make_exception_ptr(std::system_error(s.code(), message_of(s)));
    } catch (...) {
        return e;
    }
#else
    return e;
#endif
}
} // namespace detail

/// @brief Throws when `ec` holds an error, with `what` as the message.
inline void throw_if(const std::error_code& ec, const std::string& what) {
    if (ec) {
#if UNIBUF_EXCEPTIONS
        throw std::system_error(ec, what);
#else
        std::fprintf(stderr, "unibuf: %s: %s\n", ec.message().c_str(), what.c_str());
        std::abort();
#endif
    }
}

} // namespace unibuf

template <>
struct std::is_error_code_enum<unibuf::errc> : std::true_type {};
