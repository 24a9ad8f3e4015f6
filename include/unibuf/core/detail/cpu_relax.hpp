/// @file cpu_relax.hpp
/// @brief `detail::cpu_relax()`: the pause hint for spin-wait loops (nothing off x86).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#  include <immintrin.h>
#endif

namespace unibuf::detail {

/// @brief Tells the CPU this is a spin-wait iteration (x86 `pause`; a no-op elsewhere).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

} // namespace unibuf::detail
