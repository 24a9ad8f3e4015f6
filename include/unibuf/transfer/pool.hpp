/// @file pool.hpp
/// @brief The pool, in one include: `buffer_pool`, `locked_buffer_pool` and `basic_buffer_pool`
/// (pool/buffer_pool.hpp, whose file comment explains the pool), their configuration and
/// counters (pool/pool_config.hpp) and the shared state behind them (pool/pool_core.hpp).
#pragma once

#include "pool/buffer_pool.hpp"
#include "pool/pool_config.hpp"
