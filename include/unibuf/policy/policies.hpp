/// @file policy.hpp
/// @brief All built-in policies.
#pragma once

#include "access.hpp"
#include "category.hpp"
#include "coherence.hpp"
#include "placement.hpp"
#include "sync.hpp"
