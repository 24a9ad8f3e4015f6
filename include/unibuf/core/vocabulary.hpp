/// @file vocabulary.hpp
/// @brief The plain data every layer shares, in one include: memory requests and kinds, allocation
/// reports, device limits, binding usage and dispatch sizes, the default wait bound.
#pragma once

#include "limits.hpp"
#include "memory_request.hpp"
#include "report.hpp"
#include "timeout.hpp"
#include "usage.hpp"
