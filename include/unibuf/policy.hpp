/// @file policy.hpp
/// @brief All built-in policies.
#pragma once

#include "policy/access.hpp"
#include "policy/category.hpp"
#include "policy/coherence.hpp"
#include "policy/placement.hpp"
#include "policy/sync.hpp"
