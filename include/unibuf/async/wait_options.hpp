/// @file wait_options.hpp
/// @brief `wait_options`: the bound and the cancellation of an awaitable's wait.
#pragma once

#include "../core/timeout.hpp"

#include <chrono>
#include <stop_token>

namespace unibuf {

/// @brief How long an awaitable may wait and what may cancel it.
struct wait_options {
    /// @brief The bound: running out throws `errc::timeout` naming the wait (default 10 s).
    std::chrono::nanoseconds timeout = default_wait_timeout;
    /// @brief A stop request ends the wait with the cancellation error (`throw_cancelled`).
    std::stop_token stop = {};
};

} // namespace unibuf
