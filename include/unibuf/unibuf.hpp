/// @file unibuf.hpp
/// @brief Umbrella header of the core: policies, concepts, buffers, dispatch, pool, ring and the host backend.
/// GPU backends have their own headers (`backend/vulkan/`, `backend/gl/`) and CMake targets.
#pragma once

#include "buffer.hpp"
#include "concepts.hpp"
#include "config.hpp"
#include "dispatch.hpp"
#include "error.hpp"
#include "fwd.hpp"
#include "policy.hpp"
#include "pool.hpp"
#include "produce.hpp"
#include "ring.hpp"
#include "state.hpp"
#include "stream.hpp"
#include "view.hpp"
#include "backend/common.hpp"
#include "backend/host/host_backend.hpp"
