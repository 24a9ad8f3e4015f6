// A backend wrapper that counts every call into the backend and can make allocations fail
// (the cppcoro `counted` / EnTT `throwing_allocator` habit): proves "no backend allocation in
// steady state" and drives out-of-memory paths on any backend.
#pragma once

#include <unibuf/core/vocabulary.hpp>
#include <unibuf/buffer/concepts.hpp>
#include <unibuf/core/error.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace unibuf_test {

/// Forwards to `Inner` (same allocation and fence types) and counts calls.
template <unibuf::Backend Inner>
class counting_backend {
public:
    using allocation = typename Inner::allocation;
    using fence = typename Inner::fence;

    explicit counting_backend(Inner& inner) : inner_(&inner) {}

    [[nodiscard]] allocation allocate(const unibuf::memory_request& req) {
        std::error_code ec;
        allocation a = try_allocate(req, ec);
        if (ec)
            unibuf::throw_error(static_cast<unibuf::errc>(ec.value()),
                                "counting_backend: allocation of " + std::to_string(req.size_bytes) + " bytes failed");
        return a;
    }
    [[nodiscard]] allocation try_allocate(const unibuf::memory_request& req, std::error_code& ec) {
        allocations_.fetch_add(1, std::memory_order_relaxed);
        bytes_.fetch_add(req.size_bytes, std::memory_order_relaxed);
        if (fail_next_.load(std::memory_order_relaxed) > 0) {
            fail_next_.fetch_sub(1, std::memory_order_relaxed);
            ec = unibuf::errc::out_of_memory;
            return allocation{};
        }
        return inner_->try_allocate(req, ec);
    }
    fence flush(allocation& a, std::uint64_t off, std::uint64_t n) {
        flushes_.fetch_add(1, std::memory_order_relaxed);
        return inner_->flush(a, off, n);
    }
    void invalidate(allocation& a, std::uint64_t off, std::uint64_t n, std::chrono::nanoseconds timeout) {
        invalidates_.fetch_add(1, std::memory_order_relaxed);
        inner_->invalidate(a, off, n, timeout);
    }
    fence copy(allocation& s, std::uint64_t so, allocation& d, std::uint64_t dof, std::uint64_t n) {
        copies_.fetch_add(1, std::memory_order_relaxed);
        return inner_->copy(s, so, d, dof, n);
    }
    [[nodiscard]] bool wait(const fence& f, std::chrono::nanoseconds t) { return inner_->wait(f, t); }
    [[nodiscard]] bool is_complete(const fence& f) { return inner_->is_complete(f); }
    [[nodiscard]] unibuf::device_limits limits() const {
        unibuf::device_limits l = inner_->limits();
        if (max_allocation_ < l.max_allocation_size) l.max_allocation_size = max_allocation_;
        return l;
    }
    [[nodiscard]] std::string_view name() const noexcept { return "counting"; }

    /// `limits()` reports at most `bytes` as `max_allocation_size` (a device with a smaller
    /// largest allocation). Set before the backend is used.
    void limit_max_allocation_size(std::uint64_t bytes) { max_allocation_ = bytes; }
    /// The next `n` allocations fail with out_of_memory (without reaching the inner backend).
    void fail_next_allocations(int n) { fail_next_.store(n, std::memory_order_relaxed); }

    [[nodiscard]] std::uint64_t allocations() const { return allocations_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t bytes_requested() const { return bytes_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t flushes() const { return flushes_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t invalidates() const { return invalidates_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t copies() const { return copies_.load(std::memory_order_relaxed); }
    [[nodiscard]] Inner& inner() const noexcept { return *inner_; }

private:
    Inner* inner_;
    std::atomic<std::uint64_t> allocations_{0}, bytes_{0}, flushes_{0}, invalidates_{0}, copies_{0};
    std::atomic<int> fail_next_{0};
    std::uint64_t max_allocation_ = ~std::uint64_t{0};
};

} // namespace unibuf_test
