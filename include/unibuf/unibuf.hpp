/// @file unibuf.hpp
/// @brief unibuf's core in one include, layer by layer: core vocabulary, policies, the backend
/// contract and the host backend, buffers and dispatch, the transfer layer (pool, rings, producer,
/// upload stream), the async layer (coroutine tasks, the thread pool, fence and ring awaitables,
/// the pipeline; only where exceptions are on: it carries errors as exceptions), and the host
/// backend's operators (conv2d's CPU reference). The GPU backends add themselves with `unibuf/vulkan.hpp` / `unibuf/opengl.hpp`
/// (CMake targets `unibuf::vulkan`, `unibuf::opengl`).
#pragma once

#include "fwd.hpp"

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/vocabulary.hpp"

#include "policy/concepts.hpp"
#include "policy/policies.hpp"
#include "policy/policy_set.hpp"

#include "backend/concepts.hpp"
#include "backend/host/host_backend.hpp"

#include "buffer/basic_buffer.hpp"
#include "buffer/concepts.hpp"
#include "buffer/dispatch.hpp"
#include "buffer/state.hpp"
#include "buffer/view.hpp"

#include "transfer/block_allocator.hpp"
#include "transfer/pool.hpp"
#include "transfer/producer.hpp"
#include "transfer/ring.hpp"
#include "transfer/upload_stream.hpp"

#if UNIBUF_EXCEPTIONS
#include "async/pipeline.hpp"
#include "async/ring_awaitable.hpp"
#include "async/scheduler.hpp"
#include "async/stream_awaitable.hpp"
#include "async/sync_wait.hpp"
#include "async/task.hpp"
#include "async/thread_pool.hpp"
#include "async/timer_queue.hpp"
#include "async/wait_options.hpp"
#include "async/when_all.hpp"
#include "async/when_complete.hpp"
#endif

#include "ops/host/conv2d.hpp"
