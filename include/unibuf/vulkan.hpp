/// @file vulkan.hpp
/// @brief unibuf with the Vulkan backend in one include: the core (`unibuf.hpp`), `vulkan_context`,
/// `vulkan_backend`, `vulkan_kernel`, the pure memory selection and the embedded SPIR-V kernels.
/// Link `unibuf::vulkan` (CMake) or put the Vulkan headers (Vulkan-Hpp) on the include path.
#pragma once

#include "unibuf.hpp"

#include "backend/vulkan/vulkan_backend.hpp"
#include "ops/saxpy/saxpy.spv.hpp"
#include "ops/vulkan/conv2d.hpp"
#if UNIBUF_EXCEPTIONS  // the async layer carries errors as exceptions
#include "async/vulkan/fence_waiter.hpp"
#endif
