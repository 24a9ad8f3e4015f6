/// @file coherence.hpp
/// @brief Coherence policies: whether host writes/reads need flush/invalidate.
#pragma once

#include "category.hpp"

namespace unibuf::coherence {

/// @brief Host writes become visible to the device without a flush, device writes to the host
/// after the fence of the device work (no invalidate). Cost: may exclude faster non-coherent
/// cached memory on some devices.
struct coherent {
    using policy_category = coherence_tag;
    static constexpr bool requires_flush = false;
    static constexpr bool uncached = false;
    static constexpr std::string_view name = "coherence::coherent";
};

/// @brief Host writes become visible to the device only after `flush(range)`, device writes to the
/// host only after `invalidate(range)`; ranges are rounded to the device's non-coherent atom.
/// Forgetting a flush is a bug that the host backend's non-coherent simulation catches in tests.
struct explicit_flush {
    using policy_category = coherence_tag;
    static constexpr bool requires_flush = true;
    static constexpr bool uncached = false;
    static constexpr std::string_view name = "coherence::explicit_flush";
};

/// @brief Uncached, write-combined memory for streaming writes: the fastest way to push data over
/// the bus, but host reads are catastrophically slow (tens of MB/s through a PCIe BAR, a few hundred
/// times slower than the writes; measured: see bench/RESULTS.md). Only host-write-only access may use it.
struct write_combined {
    using policy_category = coherence_tag;
    static constexpr bool requires_flush = false;
    static constexpr bool uncached = true;
    static constexpr std::string_view name = "coherence::write_combined";
};

} // namespace unibuf::coherence
