/// @file memory_selection.hpp
/// @brief Vulkan memory-type selection as a pure function of (request, memory table, heap budget,
/// thresholds). No Vulkan header is included, so it is tested against recorded device tables.
///
/// | placement | device memory | host view | fallback (always reported) |
/// |---|---|---|---|
/// | `host` | `HOST_VISIBLE`, prefer not `DEVICE_LOCAL` | the same memory (zero-copy) | none needed |
/// | `device_mapped` | `DEVICE_LOCAL\|HOST_VISIBLE` (resizable BAR, BAR window, UMA) | the same memory | host memory when no such type or no room in its heap |
/// | `device` | `DEVICE_LOCAL`, never `HOST_VISIBLE` | a persistent staging buffer | device-local host-visible memory left unmapped, then system memory |
/// | `automatic` | decided below | mapped or staging | as the choice made |
///
/// Coherence: `coherent` and `write_combined` require `HOST_COHERENT`; `explicit_flush` prefers
/// memory that is not coherent (the cached, non-snooped kind). Host reads prefer `HOST_CACHED`;
/// `write_combined` prefers memory that is not cached.
///
/// `automatic`, in this order:
/// 1. `sync::none` (nobody would run a staging copy): mappable memory only, device-local if the
///    host does not read it uncached, else host memory;
/// 2. unified memory (every heap device-local): zero-copy, never staged;
/// 3. `DEVICE_LOCAL|HOST_VISIBLE` memory that the host does not read uncached and whose heap has
///    room (a small BAR window only up to `mapped_window_share` of it): zero-copy in device memory;
/// 4. smaller than `staging_min_bytes`: zero-copy host memory (a staging copy costs more than the
///    device saves on such a buffer);
/// 5. otherwise staged: device-local memory plus a staging buffer.
///
/// @code
/// auto table = unibuf::vulkan::parse_memory_table(text);
/// auto d = unibuf::vulkan::select_memory(request, table, unibuf::vulkan::heap_budget::from_heap_sizes(table));
/// if (d) std::printf("type %d, %s\n", d.device_type, d.report.reason.c_str());
/// @endcode
#pragma once

#include "../../core/detail/meta.hpp"
#include "../../core/error.hpp"
#include "../../core/vocabulary.hpp"
#include "memory_table.hpp"

#include <array>
#include <cstdio>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace unibuf::vulkan {

/// @brief Bytes each heap can still take from this process.
struct heap_budget {
    std::vector<std::uint64_t> available;  ///< per heap; a missing entry means the heap's size
    std::string source;                    ///< where the numbers come from, for reports

    /// @brief Default share of a heap's size that counts as usable when the driver reports no
    /// budget (no VK_EXT_memory_budget): other processes and the driver need the rest. The same
    /// 80% that VMA assumes in that case.
    static constexpr double default_fraction = 0.8;

    /// @brief `fraction` of each heap's size, minus `used[i]` bytes already allocated from heap i.
    /// `fraction` is taken in [0, 1] (larger as 1, smaller or NaN as 0), so the share of a heap is
    /// never more than the heap and its conversion back to bytes never overflows.
    [[nodiscard]] static heap_budget from_heap_sizes(const memory_table& t, double fraction = default_fraction,
                                                     std::span<const std::uint64_t> used = {}) {
        fraction = fraction >= 0.0 ? (fraction > 1.0 ? 1.0 : fraction) : 0.0;
        heap_budget b;
        b.available.reserve(t.heaps.size());
        for (std::size_t i = 0; i < t.heaps.size(); ++i) {
            const auto cap = static_cast<std::uint64_t>(static_cast<double>(t.heaps[i].size) * fraction);
            const std::uint64_t u = i < used.size() ? used[i] : 0;
            b.available.push_back(cap > u ? cap - u : 0);
        }
        b.source = std::to_string(static_cast<int>(fraction * 100 + 0.5)) +
                   "% of the heap size minus this process's allocations (no VK_EXT_memory_budget)";
        return b;
    }

    /// @brief Available bytes of heap `i`.
    [[nodiscard]] std::uint64_t of(const memory_table& t, std::size_t i) const noexcept {
        return i < available.size() ? available[i] : (i < t.heaps.size() ? t.heaps[i].size : 0);
    }
};

/// @brief The configurable numbers of the `automatic` decision.
struct selection_thresholds {
    /// @brief `automatic` buffers the host reads (on a discrete GPU whose mappable VRAM is not
    /// cached) stay zero-copy in cached host memory below this size and are staged from it on.
    /// Default 1 MiB: on the H100 (see DEVICE.md) a copy-engine transfer runs at 49 GB/s, so 1 MiB
    /// takes ~21 µs, about one submit round trip (17 µs spinning, 56 µs blocking): below it the
    /// fixed cost of a staging copy exceeds what reading device-local memory saves.
    std::uint64_t staging_min_bytes = std::uint64_t{1} << 20;
    /// @brief `automatic` places a buffer in a small mappable device-local window (a 256 MiB BAR
    /// that is not the whole VRAM heap) only up to this share of the window's available bytes,
    /// leaving the rest to other buffers and the driver. A full resizable BAR is not capped.
    double mapped_window_share = 0.25;
    /// @brief Stage every `automatic` buffer (except under `sync::none`); for tests of the staging
    /// path on unified-memory devices. Recorded as a fallback.
    bool force_staging = false;
};

/// @brief What `select_memory` chose: the memory types, zero-copy or staged, and the report.
struct memory_decision {
    std::error_code error;  ///< empty when a choice was made
    std::string message;    ///< on error: what was asked and what the device offers
    bool staged = false;    ///< a separate device buffer plus a host staging buffer
    int device_type = -1;   ///< memory type of the buffer the device uses (the mapped one when zero-copy)
    int staging_type = -1;  ///< memory type of the staging buffer (staged only)
    allocation_report report;

    /// @brief True when a choice was made.
    [[nodiscard]] explicit operator bool() const noexcept { return !error; }
};

namespace detail {

/// Types no buffer of unibuf uses: they need features unibuf does not enable (protected memory,
/// AMD device-coherent memory) or are for transient attachments only.
inline constexpr std::uint32_t unusable_memory = memory_property::lazily_allocated |
                                                 memory_property::protected_memory |
                                                 memory_property::device_coherent_amd |
                                                 memory_property::device_uncached_amd;

/// Prefer types where `(flags & mask) == (set ? mask : 0)`.
struct preference {
    std::uint32_t mask = 0;
    bool set = true;
};

struct type_query {
    std::uint32_t required = 0;
    std::uint32_t forbidden = 0;
    std::array<preference, 4> prefs{};
    std::size_t n_prefs = 0;
    std::uint64_t size = 0;
    double window_share = 1.0;  ///< cap on heaps other than the main device heap (small BAR windows)

    type_query& prefer(std::uint32_t mask, bool set) {
        prefs[n_prefs++] = {mask, set};
        return *this;
    }
};

[[nodiscard]] inline std::string format_bytes(std::uint64_t b) {
    const char* unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double v = static_cast<double>(b);
    while (v >= 1024.0 && u < 4 && (b % 1024 == 0 || v >= 10240.0)) {
        v /= 1024.0;
        ++u;
    }
    char buf[48];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, unit[u]);
    return buf;
}

[[nodiscard]] inline std::uint64_t room(const memory_table& t, const heap_budget& b, std::uint32_t heap,
                                        double window_share) {
    const std::uint64_t avail = b.of(t, heap);
    if (window_share < 1.0 && static_cast<int>(heap) != t.main_device_heap())  // a NaN share counts as 1
        return window_share > 0.0 ? static_cast<std::uint64_t>(static_cast<double>(avail) * window_share) : 0;
    return avail;
}

[[nodiscard]] inline bool flags_match(const memory_type& ty, const type_query& q, std::uint32_t allowed,
                                      std::size_t index) noexcept {
    if (index < 32 && ((allowed >> index) & 1u) == 0) return false;
    if ((ty.flags & unusable_memory) != 0) return false;
    return (ty.flags & q.required) == q.required && (ty.flags & q.forbidden) == 0;
}

/// The best type for `q` (highest preference score, then lowest index, as Vulkan orders types
/// from fastest to slowest within equal properties), or -1.
[[nodiscard]] inline int best_type(const memory_table& t, const heap_budget& b, const type_query& q,
                                   std::uint32_t allowed) {
    int best = -1;
    unsigned best_score = 0;
    for (std::size_t i = 0; i < t.types.size(); ++i) {
        const auto& ty = t.types[i];
        if (!flags_match(ty, q, allowed, i)) continue;
        if (q.size > room(t, b, ty.heap, q.window_share)) continue;
        unsigned score = 0;
        for (std::size_t p = 0; p < q.n_prefs; ++p) {
            const auto& pr = q.prefs[p];
            const bool ok = (ty.flags & pr.mask) == (pr.set ? pr.mask : 0u);
            score = (score << 1) | (ok ? 1u : 0u);
        }
        if (best < 0 || score > best_score) {
            best = static_cast<int>(i);
            best_score = score;
        }
    }
    return best;
}

[[nodiscard]] inline std::string describe_query(const type_query& q) {
    std::string s = describe_memory_flags(q.required);
    if (q.forbidden != 0) s += " without " + describe_memory_flags(q.forbidden);
    return s;
}

/// Why `best_type` found nothing: no such type, or which heaps lacked room. Sets `size_only`
/// when types with the flags exist but none had room.
[[nodiscard]] inline std::string explain_miss(const memory_table& t, const heap_budget& b, const type_query& q,
                                              std::uint32_t allowed, bool& size_only) {
    std::string heaps;
    std::vector<std::uint32_t> seen;
    for (std::size_t i = 0; i < t.types.size(); ++i) {
        const auto& ty = t.types[i];
        if (!flags_match(ty, q, allowed, i)) continue;
        bool dup = false;
        for (auto h : seen) dup = dup || h == ty.heap;
        if (dup) continue;
        seen.push_back(ty.heap);
        if (!heaps.empty()) heaps += ", ";
        heaps += "heap " + std::to_string(ty.heap) + " (" + format_bytes(t.heaps[ty.heap].size) + ") has " +
                 format_bytes(room(t, b, ty.heap, q.window_share)) + " available";
        if (q.window_share < 1.0 && static_cast<int>(ty.heap) != t.main_device_heap())
            heaps += " to one buffer (" + std::to_string(static_cast<int>(q.window_share * 100)) +
                     "% of a small mappable window)";
    }
    size_only = !seen.empty();
    if (seen.empty()) return "no memory type is " + describe_query(q);
    return describe_query(q) + " memory cannot hold " + format_bytes(q.size) + ": " + heaps;
}

[[nodiscard]] inline std::string type_name(const memory_table& t, int i) {
    const auto& ty = t.types[static_cast<std::size_t>(i)];
    return "type " + std::to_string(i) + " (" + describe_memory_flags(ty.flags) + ", heap " + std::to_string(ty.heap) + ")";
}

} // namespace detail

/// @brief Chooses the memory for a buffer described by `req` on a device whose memory is `table`.
///
/// Pure: the same inputs give the same decision. Every fallback taken is appended to
/// `report.fallbacks`; `report.reason` says why the memory was chosen.
/// @param req       the buffer's policies and size (`memory_request_for`)
/// @param table     the device's memory types and heaps
/// @param budget    bytes each heap can still take (`heap_budget::from_heap_sizes` or VK_EXT_memory_budget)
/// @param limits    thresholds of the automatic decision
/// @param allowed_types bit i set when type i may back the buffer (VkMemoryRequirements::memoryTypeBits)
/// @returns a decision; on failure `error` is errc::out_of_memory (no heap has room),
///          errc::unsupported (no memory type fits) or errc::invalid_argument (the request breaks
///          a combination rule or asks for 0 bytes), and `message` names what was asked and offered.
[[nodiscard]] inline memory_decision select_memory(const memory_request& req, const memory_table& table,
                                                   const heap_budget& budget,
                                                   const selection_thresholds& limits = {},
                                                   std::uint32_t allowed_types = ~0u) {
    using namespace memory_property;
    using detail::type_query;
    memory_decision d;
    d.report.requested = req.placement;
    auto fail = [&](errc e, std::string msg) {
        d.error = e;
        d.message = "unibuf: vulkan: " + std::move(msg);
        return d;
    };
    if (req.size_bytes == 0)
        return fail(errc::invalid_argument, "an allocation of 0 bytes was requested; buffers need at least one element");
    if (req.write_combined && req.host_read)
        return fail(errc::invalid_argument, "write_combined memory with host reads (rule R4): use access::write_only");
    if (req.placement == placement_kind::device && req.sync == sync_kind::none)
        return fail(errc::invalid_argument, "placement::device with sync::none (rule R5): use sync::fenced or sync::lazy");
    if (req.placement == placement_kind::device && (req.explicit_flush || req.write_combined))
        return fail(errc::invalid_argument, "placement::device takes only coherence::coherent (rule R6)");

    const std::uint64_t n = req.size_bytes;
    const bool uma = table.unified();

    // Host-side preferences shared by mapped and staging memory.
    auto add_host_prefs = [&](type_query& q) {
        if (req.explicit_flush) q.prefer(host_coherent, false);  // non-coherent: the cached, non-snooped kind
        if (req.host_read) q.prefer(host_cached, true);          // cached reads (uncached BAR reads: 0.03 GB/s)
        else if (req.write_combined) q.prefer(host_cached, false);
    };
    auto coherence_required = [&]() -> std::uint32_t { return req.explicit_flush ? 0u : host_coherent; };

    type_query host_q;
    host_q.required = host_visible | coherence_required();
    host_q.size = n;
    host_q.prefer(device_local, false);  // system RAM; on unified memory every type is device-local anyway
    add_host_prefs(host_q);

    type_query mapped_q;
    mapped_q.required = device_local | host_visible | coherence_required();
    mapped_q.size = n;
    add_host_prefs(mapped_q);

    auto cached = [&](int i) { return (table.types[static_cast<std::size_t>(i)].flags & host_cached) != 0; };
    auto coherent = [&](int i) { return (table.types[static_cast<std::size_t>(i)].flags & host_coherent) != 0; };

    auto zero_copy = [&](int type, placement_kind chosen, std::string reason) {
        d.staged = false;
        d.device_type = type;
        d.report.chosen = chosen;
        d.report.zero_copy = true;
        d.report.host_coherent = coherent(type);
        d.report.host_cached = cached(type);
        d.report.memory_type = type;
        d.report.reason = std::move(reason) + "; " + detail::type_name(table, type);
        if (req.explicit_flush && coherent(type))
            d.report.reason += "; no non-coherent type fits, so flush/invalidate are no-ops";
        return d;
    };
    auto no_memory = [&](const type_query& q, const std::string& what) {
        bool size_only = false;
        const std::string why = detail::explain_miss(table, budget, q, allowed_types, size_only);
        return fail(size_only ? errc::out_of_memory : errc::unsupported,
                    what + ": asked for " + detail::format_bytes(n) + " (" + std::to_string(n) + " bytes); " + why +
                        " [budget: " + (budget.source.empty() ? std::string("heap sizes") : budget.source) + "]");
    };
    auto host_memory = [&](std::string reason) {
        const int t = detail::best_type(table, budget, host_q, allowed_types);
        if (t < 0) return no_memory(host_q, "host memory");
        return zero_copy(t, placement_kind::host, std::move(reason));
    };

    // Staged: a device-local buffer (never host-visible when the device has such memory) plus a
    // host-visible staging buffer. The staging buffer is chosen after the device buffer's bytes are
    // taken from the budget, since both may share a heap.
    auto staged = [&](std::string reason) {
        type_query dev_q;
        dev_q.required = device_local;
        dev_q.forbidden = host_visible;
        dev_q.size = n;
        int dt = detail::best_type(table, budget, dev_q, allowed_types);
        if (dt < 0) {
            bool size_only = false;
            const std::string why = detail::explain_miss(table, budget, dev_q, allowed_types, size_only);
            type_query any_dl;
            any_dl.required = device_local;
            any_dl.size = n;
            dt = detail::best_type(table, budget, any_dl, allowed_types);
            if (dt >= 0) {
                d.report.fallbacks.push_back(why + "; the device copy uses " + detail::type_name(table, dt) +
                                             ", which is host-visible but left unmapped (host access stays staged)");
            } else {
                type_query sys_q;
                sys_q.size = n;
                sys_q.prefer(host_visible, false);
                dt = detail::best_type(table, budget, sys_q, allowed_types);
                if (dt < 0) return no_memory(any_dl, "device memory");
                d.report.fallbacks.push_back(why + "; no device-local heap has room, so the device copy is in "
                                             "system memory, " + detail::type_name(table, dt) +
                                             " (device reads cross the bus)");
            }
        }
        heap_budget rest = budget;
        const auto dh = table.types[static_cast<std::size_t>(dt)].heap;
        rest.available.resize(table.heaps.size());
        for (std::size_t i = 0; i < table.heaps.size(); ++i)
            if (i >= budget.available.size()) rest.available[i] = table.heaps[i].size;
        rest.available[dh] = rest.available[dh] > n ? rest.available[dh] - n : 0;

        type_query st_q;
        st_q.required = host_visible | host_coherent;
        st_q.size = n;
        st_q.prefer(device_local, false);  // a BAR staging buffer would be pointless
        if (req.host_read) st_q.prefer(host_cached, true);
        else if (req.write_combined) st_q.prefer(host_cached, false);
        const int stt = detail::best_type(table, rest, st_q, allowed_types);
        if (stt < 0) {
            bool size_only = false;
            const std::string why = detail::explain_miss(table, rest, st_q, allowed_types, size_only);
            return fail(size_only ? errc::out_of_memory : errc::unsupported,
                        "staging memory: asked for " + detail::format_bytes(n) + " (" + std::to_string(n) +
                            " bytes) beside the device copy; " + why);
        }
        d.staged = true;
        d.device_type = dt;
        d.staging_type = stt;
        d.report.chosen = placement_kind::device;
        d.report.zero_copy = false;
        d.report.host_coherent = coherent(stt);
        d.report.host_cached = cached(stt);
        d.report.memory_type = dt;
        d.report.reason = std::move(reason) + "; device copy " + detail::type_name(table, dt) + ", staging " +
                          detail::type_name(table, stt);
        return d;
    };

    switch (req.placement) {
        case placement_kind::host:
            return host_memory(uma ? "host: host-visible memory (unified memory: system RAM is device-local)"
                                   : "host: host-visible system memory the device reads over the bus");

        case placement_kind::device_mapped: {
            const int t = detail::best_type(table, budget, mapped_q, allowed_types);
            if (t >= 0) {
                std::string why = "device_mapped: device-local memory mapped into the host";
                if (req.host_read && !cached(t)) why += " (host reads are uncached and slow)";
                return zero_copy(t, placement_kind::device_mapped, why);
            }
            bool size_only = false;
            const std::string miss = detail::explain_miss(table, budget, mapped_q, allowed_types, size_only);
            d.report.fallbacks.push_back("device_mapped -> host: " + miss);
            return host_memory("host memory instead of device_mapped (fallback)");
        }

        case placement_kind::device:
            return staged("device: device-local memory, host access through a staging buffer");

        case placement_kind::automatic:
            break;
    }

    // ---- automatic ------------------------------------------------------------------------
    type_query window_q = mapped_q;
    window_q.window_share = limits.mapped_window_share;
    const int mapped = detail::best_type(table, budget, window_q, allowed_types);
    const bool mapped_ok = mapped >= 0 && (!req.host_read || cached(mapped));

    if (req.sync == sync_kind::none) {
        if (mapped_ok)
            return zero_copy(mapped, placement_kind::device_mapped,
                             "automatic, sync::none (must stay mappable): device-local memory mapped into the host");
        return host_memory("automatic, sync::none (must stay mappable): host memory" +
                           std::string(mapped < 0 ? "" : ", since mapped device memory is uncached for host reads"));
    }
    if (limits.force_staging) {
        d.report.fallbacks.push_back("forced staging (selection_thresholds::force_staging) instead of a zero-copy choice");
        return staged("automatic, staging forced");
    }
    if (uma) {
        const int t = detail::best_type(table, budget, mapped_q, allowed_types);
        if (t < 0) return no_memory(mapped_q, "automatic on unified memory");
        return zero_copy(t, placement_kind::device_mapped,
                         "automatic, unified memory: the host maps device memory directly, no staging needed");
    }
    if (mapped_ok)
        return zero_copy(mapped, placement_kind::device_mapped,
                         req.host_read ? "automatic: cached device-local memory mapped into the host"
                                       : "automatic, host does not read: writes go straight into device-local "
                                         "memory through the BAR");
    if (n < limits.staging_min_bytes)
        return host_memory("automatic: " + detail::format_bytes(n) + " < staging_min_bytes (" +
                           detail::format_bytes(limits.staging_min_bytes) +
                           "): zero-copy host memory, a staging copy would cost more than it saves");
    std::string why = "automatic: " + detail::format_bytes(n) + " >= staging_min_bytes (" +
                      detail::format_bytes(limits.staging_min_bytes) + "): staged";
    why += mapped < 0 ? " (no mappable device-local memory with room)"
                      : " (mapped device-local memory is uncached for host reads)";
    memory_decision s = staged(why);
    if (s) return s;
    // Staging needs room on both sides; zero-copy host memory needs it only once.
    d = memory_decision{};
    d.report.requested = req.placement;
    d.report.fallbacks.push_back("staged automatic -> host: " + s.message);
    return host_memory("host memory instead of staging (fallback)");
}

/// @brief When a parallel fill (`unibuf::producer`) of a zero-copy buffer in mappable VRAM goes
/// through system-memory staging and the copy engine instead of storing through the BAR.
///
/// Measured on the H100 (bench/RESULTS.md, producer crossover, 4 MiB-1 GiB x 1-16 writers): stores
/// through the BAR saturate at 31-34 GB/s from 4 writers on (14-16 GB/s with one); the pipelined
/// staging path (8 MiB chunks, complete chunks batched per submission) reaches 43-46 GB/s from
/// 256 MiB with 4-16 writers and 34-37 GB/s at 64 MiB, but at 4-16 MiB its fill and drain make it
/// slower than direct stores (9-24 GB/s), and at 32 MiB the two are level. Hence the defaults:
/// staged from 48 MiB (between the level 32 MiB and the winning 64 MiB) with at least 2 writers;
/// with one writer the two paths are within noise of each other (10-20 GB/s), so direct.
struct producer_thresholds {
    /// @brief Fewest writer threads for the staged path.
    unsigned staged_min_threads = 2;
    /// @brief Fewest bytes for the staged path (below it the pipeline's fill and drain cost more
    /// than the faster transfer saves).
    std::uint64_t staged_min_bytes = std::uint64_t{48} << 20;
};

/// @brief Pure choice of the fill path for `bytes` written by `threads` writer threads into an
/// allocation whose device memory is type `device_type` of `t` (`staged`: it has its own staging
/// buffer, placement::device).
[[nodiscard]] inline produce_plan select_produce_path(const memory_table& t, int device_type, bool staged,
                                                      std::uint64_t bytes, unsigned threads,
                                                      const producer_thresholds& th = {}) {
    auto plan = [](produce_path p, std::string why) { return produce_plan{p, std::move(why)}; };
    if (staged)
        return plan(produce_path::staged_pipelined,
                    "device memory without a host mapping: the writers fill its staging buffer and each chunk is "
                    "copied to the device as soon as it is complete");
    if (device_type < 0 || static_cast<std::size_t>(device_type) >= t.types.size())
        return plan(produce_path::direct, "unknown memory type: direct writes");
    const std::uint32_t f = t.types[static_cast<std::size_t>(device_type)].flags;
    if ((f & memory_property::device_local) == 0)
        return plan(produce_path::direct,
                    "system memory (type " + std::to_string(device_type) +
                        "): the writes are the upload, the device reads the memory in place");
    if (t.unified())
        return plan(produce_path::direct, "unified memory: every memory type is device-local, a copy cannot be faster");
    bool system_type = false;
    for (const auto& ty : t.types)
        system_type = system_type || ((ty.flags & memory_property::host_visible) != 0 &&
                                      (ty.flags & memory_property::device_local) == 0);
    if (!system_type)
        return plan(produce_path::direct, "no host-visible system memory to stage through: direct writes");
    if (threads < th.staged_min_threads)
        return plan(produce_path::direct,
                    std::to_string(threads) + " writer thread(s) < " + std::to_string(th.staged_min_threads) +
                        ": stores straight into mappable VRAM (type " + std::to_string(device_type) +
                        ") are faster than staging");
    if (bytes < th.staged_min_bytes)
        return plan(produce_path::direct, std::to_string(bytes) + " bytes < " + std::to_string(th.staged_min_bytes) +
                                              ": too little to fill a staging pipeline; direct writes into VRAM");
    return plan(produce_path::staged_pipelined,
                std::to_string(threads) + " writers >= " + std::to_string(th.staged_min_threads) + " and " +
                    std::to_string(bytes) + " bytes >= " + std::to_string(th.staged_min_bytes) +
                    ": writes into system memory pipelined with copy-engine copies into VRAM (type " +
                    std::to_string(device_type) + ") outrun stores through the BAR");
}

/// @brief A byte range of mapped memory as vkFlush/InvalidateMappedMemoryRanges take it.
struct atom_range {
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
};

/// @brief The range to flush or invalidate for host bytes `[off, off + n)` of a mapped allocation of
/// `allocation_bytes`: the start rounded down and the end rounded up to `atom`
/// (nonCoherentAtomSize), the end clamped to the allocation (whose size unibuf keeps a multiple of
/// the atom, so the clamped end is valid too). Empty when `n` is 0. No sum is formed past
/// `allocation_bytes`, so offsets and sizes near 2^64 give the clamped range, never a wrapped one.
[[nodiscard]] constexpr atom_range round_to_atom(std::uint64_t off, std::uint64_t n, std::uint64_t atom,
                                                 std::uint64_t allocation_bytes) noexcept {
    if (n == 0 || off >= allocation_bytes) return {};
    if (atom == 0) atom = 1;
    const std::uint64_t b = off / atom * atom;
    const std::uint64_t left = allocation_bytes - off;  // > 0
    std::uint64_t e = n >= left ? allocation_bytes : off + n;
    if (const std::uint64_t rest = e % atom; rest != 0)
        e = atom - rest > allocation_bytes - e ? allocation_bytes : e + (atom - rest);
    return {b, e - b};
}

/// @brief A short label of a request's policies ("read_write coherent automatic fenced").
[[nodiscard]] inline std::string describe_request(const memory_request& r) {
    std::string s = r.host_read && r.host_write ? "read_write" : r.host_read ? "read_only" : "write_only";
    s += r.write_combined ? " write_combined" : r.explicit_flush ? " explicit_flush" : " coherent";
    s += " ";
    s += to_string(r.placement);
    s += " ";
    s += to_string(r.sync);
    return s;
}

} // namespace unibuf::vulkan
