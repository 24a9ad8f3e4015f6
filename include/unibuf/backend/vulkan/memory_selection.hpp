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
#include "../produce_plan.hpp"
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

    /// @brief `fraction` (in [0, 1]) of `bytes`, rounded down, never more than `bytes`. The product
    /// is formed in double, where a size near 2^64 rounds up to 2^64, which no uint64 holds: such
    /// results are clamped to `bytes` instead of converted (found by fuzzing).
    [[nodiscard]] static constexpr std::uint64_t scale_bytes(std::uint64_t bytes, double fraction) noexcept {
        if (!(fraction > 0.0)) return 0;  // also NaN
        if (fraction >= 1.0) return bytes;
        const double v = static_cast<double>(bytes) * fraction;
        if (v >= 18446744073709551616.0) return bytes;  // 2^64
        const auto r = static_cast<std::uint64_t>(v);
        return r < bytes ? r : bytes;
    }

    /// @brief `fraction` of each heap's size, minus `used[i]` bytes already allocated from heap i.
    /// `fraction` is taken in [0, 1] (larger as 1, smaller or NaN as 0), so the share of a heap is
    /// never more than the heap and its conversion back to bytes never overflows.
    [[nodiscard]] static heap_budget from_heap_sizes(const memory_table& t, double fraction = default_fraction,
                                                     std::span<const std::uint64_t> used = {}) {
        fraction = fraction >= 0.0 ? (fraction > 1.0 ? 1.0 : fraction) : 0.0;
        heap_budget b;
        b.available.reserve(t.heaps.size());
        for (std::size_t i = 0; i < t.heaps.size(); ++i) {
            const std::uint64_t cap = scale_bytes(t.heaps[i].size, fraction);
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
    /// Default 1 MiB: about what a copy-engine transfer moves in the time of one submit round
    /// trip, so below it the fixed cost of a staging copy exceeds what reading device-local memory
    /// saves (measured: see bench/RESULTS.md).
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
        return heap_budget::scale_bytes(avail, window_share);
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

/// The steps of `select_memory` for one request, one member per decision; each says what it
/// chose, and why, in the decision's report. One object per call: it collects the fallbacks
/// taken on the way in `d_`.
class memory_selector {
public:
    memory_selector(const memory_request& req, const memory_table& table, const heap_budget& budget,
                    const selection_thresholds& limits, std::uint32_t allowed)
        : req_(req), table_(table), budget_(budget), limits_(limits), allowed_(allowed) {
        d_.report.requested = req.placement;
    }

    /// The decision for the request: its combination rules first, then by placement.
    [[nodiscard]] memory_decision select() {
        if (const char* broken = broken_rule(req_); broken != nullptr) return fail(errc::invalid_argument, broken);
        switch (req_.placement) {
            case placement_kind::host: return decide_host();
            case placement_kind::device_mapped: return decide_device_mapped();
            case placement_kind::device:
                return staged("device: device-local memory, host access through a staging buffer");
            case placement_kind::automatic: break;
        }
        return decide_automatic();
    }

private:
    // ---- the request ----------------------------------------------------------------------

    // The combination rule `req` breaks (or its 0 bytes), or null.
    [[nodiscard]] static const char* broken_rule(const memory_request& req) noexcept {
        if (req.size_bytes == 0) return "an allocation of 0 bytes was requested; buffers need at least one element";
        if (req.write_combined && req.host_read)
            return "write_combined memory with host reads (rule R4): use access::write_only";
        if (req.placement == placement_kind::device && req.sync == sync_kind::none)
            return "placement::device with sync::none (rule R5): use sync::fenced or sync::lazy";
        if (req.placement == placement_kind::device && (req.explicit_flush || req.write_combined))
            return "placement::device takes only coherence::coherent (rule R6)";
        return nullptr;
    }

    // ---- the memory each choice looks for -------------------------------------------------

    // Host-side preferences shared by mapped and staging memory.
    void add_host_prefs(type_query& q) const {
        using namespace memory_property;
        if (req_.explicit_flush) q.prefer(host_coherent, false);  // non-coherent: the cached, non-snooped kind
        if (req_.host_read) q.prefer(host_cached, true);          // cached reads (uncached BAR reads are very slow)
        else if (req_.write_combined) q.prefer(host_cached, false);
    }
    [[nodiscard]] std::uint32_t coherence_required() const noexcept {
        return req_.explicit_flush ? 0u : memory_property::host_coherent;
    }

    // Zero-copy system memory.
    [[nodiscard]] type_query host_query() const {
        using namespace memory_property;
        type_query q;
        q.required = host_visible | coherence_required();
        q.size = req_.size_bytes;
        q.prefer(device_local, false);  // system RAM; on unified memory every type is device-local anyway
        add_host_prefs(q);
        return q;
    }

    // Zero-copy device memory mapped into the host.
    [[nodiscard]] type_query mapped_query() const {
        using namespace memory_property;
        type_query q;
        q.required = device_local | host_visible | coherence_required();
        q.size = req_.size_bytes;
        add_host_prefs(q);
        return q;
    }

    // Any device-local memory (a staged device copy's fallback).
    [[nodiscard]] type_query device_local_query() const {
        type_query q;
        q.required = memory_property::device_local;
        q.size = req_.size_bytes;
        return q;
    }

    // The staging buffer: coherent system memory.
    [[nodiscard]] type_query staging_query() const {
        using namespace memory_property;
        type_query q;
        q.required = host_visible | host_coherent;
        q.size = req_.size_bytes;
        q.prefer(device_local, false);  // a BAR staging buffer would be pointless
        if (req_.host_read) q.prefer(host_cached, true);
        else if (req_.write_combined) q.prefer(host_cached, false);
        return q;
    }

    [[nodiscard]] int best(const type_query& q) const { return best_type(table_, budget_, q, allowed_); }
    [[nodiscard]] std::uint32_t flags_of(int i) const { return table_.types[static_cast<std::size_t>(i)].flags; }
    [[nodiscard]] bool cached(int i) const { return (flags_of(i) & memory_property::host_cached) != 0; }
    [[nodiscard]] bool coherent(int i) const { return (flags_of(i) & memory_property::host_coherent) != 0; }

    // ---- outcomes -------------------------------------------------------------------------

    memory_decision fail(errc e, std::string msg) {
        d_.error = e;
        d_.message = "unibuf: vulkan: " + std::move(msg);
        return d_;
    }

    memory_decision zero_copy(int type, placement_kind chosen, std::string reason) {
        d_.staged = false;
        d_.device_type = type;
        d_.report.chosen = chosen;
        d_.report.zero_copy = true;
        d_.report.host_coherent = coherent(type);
        d_.report.host_cached = cached(type);
        d_.report.memory_type = type;
        d_.report.reason = std::move(reason) + "; " + type_name(table_, type);
        if (req_.explicit_flush && coherent(type))
            d_.report.reason += "; no non-coherent type fits, so flush/invalidate are no-ops";
        return d_;
    }

    // Nothing of `q` has room (out_of_memory) or exists (unsupported).
    memory_decision no_memory(const type_query& q, const std::string& what) {
        const std::uint64_t n = req_.size_bytes;
        bool size_only = false;
        const std::string why = explain_miss(table_, budget_, q, allowed_, size_only);
        return fail(size_only ? errc::out_of_memory : errc::unsupported,
                    what + ": asked for " + format_bytes(n) + " (" + std::to_string(n) + " bytes); " + why +
                        " [budget: " + (budget_.source.empty() ? std::string("heap sizes") : budget_.source) + "]");
    }

    // Zero-copy system memory, or why there is none.
    memory_decision host_memory(std::string reason) {
        const type_query q = host_query();
        const int t = best(q);
        if (t < 0) return no_memory(q, "host memory");
        return zero_copy(t, placement_kind::host, std::move(reason));
    }

    // ---- staged: a device copy plus a staging buffer --------------------------------------

    // The device copy's type: device-local memory that is not host-visible, else device-local
    // memory left unmapped, else system memory (each fallback reported); -1 when none has room.
    [[nodiscard]] int device_copy_type() {
        type_query dev_q = device_local_query();
        dev_q.forbidden = memory_property::host_visible;
        const int dt = best(dev_q);
        if (dt >= 0) return dt;
        bool size_only = false;
        const std::string why = explain_miss(table_, budget_, dev_q, allowed_, size_only);
        if (const int any = best(device_local_query()); any >= 0) {
            d_.report.fallbacks.push_back(why + "; the device copy uses " + type_name(table_, any) +
                                          ", which is host-visible but left unmapped (host access stays staged)");
            return any;
        }
        type_query sys_q;
        sys_q.size = req_.size_bytes;
        sys_q.prefer(memory_property::host_visible, false);
        const int sys = best(sys_q);
        if (sys >= 0)
            d_.report.fallbacks.push_back(why + "; no device-local heap has room, so the device copy is in "
                                          "system memory, " + type_name(table_, sys) + " (device reads cross the bus)");
        return sys;
    }

    // The budget once the device copy (type `dt`) has taken its bytes: the staging buffer may
    // share its heap.
    [[nodiscard]] heap_budget budget_beside_device_copy(int dt) const {
        const std::uint64_t n = req_.size_bytes;
        heap_budget rest = budget_;
        const auto dh = table_.types[static_cast<std::size_t>(dt)].heap;
        rest.available.resize(table_.heaps.size());
        for (std::size_t i = 0; i < table_.heaps.size(); ++i)
            if (i >= budget_.available.size()) rest.available[i] = table_.heaps[i].size;
        rest.available[dh] = rest.available[dh] > n ? rest.available[dh] - n : 0;
        return rest;
    }

    // Staged: a device-local buffer (never host-visible when the device has such memory) plus a
    // host-visible staging buffer, chosen after the device buffer's bytes are taken from the budget.
    memory_decision staged(std::string reason) {
        const std::uint64_t n = req_.size_bytes;
        const int dt = device_copy_type();
        if (dt < 0) return no_memory(device_local_query(), "device memory");
        const heap_budget rest = budget_beside_device_copy(dt);
        const type_query st_q = staging_query();
        const int stt = best_type(table_, rest, st_q, allowed_);
        if (stt < 0) {
            bool size_only = false;
            const std::string why = explain_miss(table_, rest, st_q, allowed_, size_only);
            return fail(size_only ? errc::out_of_memory : errc::unsupported,
                        "staging memory: asked for " + format_bytes(n) + " (" + std::to_string(n) +
                            " bytes) beside the device copy; " + why);
        }
        d_.staged = true;
        d_.device_type = dt;
        d_.staging_type = stt;
        d_.report.chosen = placement_kind::device;
        d_.report.zero_copy = false;
        d_.report.host_coherent = coherent(stt);
        d_.report.host_cached = cached(stt);
        d_.report.memory_type = dt;
        d_.report.reason = std::move(reason) + "; device copy " + type_name(table_, dt) + ", staging " +
                           type_name(table_, stt);
        return d_;
    }

    // ---- by placement -----------------------------------------------------------------------

    memory_decision decide_host() {
        return host_memory(table_.unified() ? "host: host-visible memory (unified memory: system RAM is device-local)"
                                            : "host: host-visible system memory the device reads over the bus");
    }

    // Mapped device memory, else host memory (reported).
    memory_decision decide_device_mapped() {
        const type_query q = mapped_query();
        const int t = best(q);
        if (t >= 0) {
            std::string why = "device_mapped: device-local memory mapped into the host";
            if (req_.host_read && !cached(t)) why += " (host reads are uncached and slow)";
            return zero_copy(t, placement_kind::device_mapped, why);
        }
        bool size_only = false;
        const std::string miss = explain_miss(table_, budget_, q, allowed_, size_only);
        d_.report.fallbacks.push_back("device_mapped -> host: " + miss);
        return host_memory("host memory instead of device_mapped (fallback)");
    }

    // The order of the file comment: sync::none, forced staging, unified memory, mapped device
    // memory, small buffers, then staged.
    memory_decision decide_automatic() {
        type_query window_q = mapped_query();
        window_q.window_share = limits_.mapped_window_share;
        const int mapped = best(window_q);
        const bool mapped_ok = mapped >= 0 && (!req_.host_read || cached(mapped));
        const std::uint64_t n = req_.size_bytes;

        if (req_.sync == sync_kind::none) return decide_mappable_only(mapped, mapped_ok);
        if (limits_.force_staging) {
            d_.report.fallbacks.push_back(
                "forced staging (selection_thresholds::force_staging) instead of a zero-copy choice");
            return staged("automatic, staging forced");
        }
        if (table_.unified()) return decide_unified();
        if (mapped_ok)
            return zero_copy(mapped, placement_kind::device_mapped,
                             req_.host_read ? "automatic: cached device-local memory mapped into the host"
                                            : "automatic, host does not read: writes go straight into device-local "
                                              "memory through the BAR");
        if (n < limits_.staging_min_bytes)
            return host_memory("automatic: " + format_bytes(n) + " < staging_min_bytes (" +
                               format_bytes(limits_.staging_min_bytes) +
                               "): zero-copy host memory, a staging copy would cost more than it saves");
        return decide_staged_or_host(mapped);
    }

    // sync::none: nobody would run a staging copy, so mappable memory only.
    memory_decision decide_mappable_only(int mapped, bool mapped_ok) {
        if (mapped_ok)
            return zero_copy(mapped, placement_kind::device_mapped,
                             "automatic, sync::none (must stay mappable): device-local memory mapped into the host");
        return host_memory("automatic, sync::none (must stay mappable): host memory" +
                           std::string(mapped < 0 ? "" : ", since mapped device memory is uncached for host reads"));
    }

    // Unified memory: the host maps device memory directly, never staged.
    memory_decision decide_unified() {
        const type_query q = mapped_query();
        const int t = best(q);
        if (t < 0) return no_memory(q, "automatic on unified memory");
        return zero_copy(t, placement_kind::device_mapped,
                         "automatic, unified memory: the host maps device memory directly, no staging needed");
    }

    // A large buffer without usable mapped device memory: staged; host memory (reported) when
    // staging finds no room, since it needs room on both sides and zero-copy only once.
    memory_decision decide_staged_or_host(int mapped) {
        const std::uint64_t n = req_.size_bytes;
        std::string why = "automatic: " + format_bytes(n) + " >= staging_min_bytes (" +
                          format_bytes(limits_.staging_min_bytes) + "): staged";
        why += mapped < 0 ? " (no mappable device-local memory with room)"
                          : " (mapped device-local memory is uncached for host reads)";
        memory_decision s = staged(why);
        if (s) return s;
        d_ = memory_decision{};
        d_.report.requested = req_.placement;
        d_.report.fallbacks.push_back("staged automatic -> host: " + s.message);
        return host_memory("host memory instead of staging (fallback)");
    }

    const memory_request& req_;
    const memory_table& table_;
    const heap_budget& budget_;
    const selection_thresholds& limits_;
    std::uint32_t allowed_;
    memory_decision d_;
};

} // namespace detail

/// @brief Chooses the memory for a buffer described by `req` on a device whose memory is `table`.
///
/// Pure: the same inputs give the same decision. Every fallback taken is appended to
/// `report.fallbacks`; `report.reason` says why the memory was chosen. The steps are the members
/// of `detail::memory_selector`, in the order of the file comment.
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
    return detail::memory_selector(req, table, budget, limits, allowed_types).select();
}

/// @brief When a parallel fill (`unibuf::producer`) of a zero-copy buffer in mappable VRAM goes
/// through system-memory staging and the copy engine instead of storing through the BAR.
///
/// The defaults follow the measured crossover (measured: see bench/RESULTS.md, producer
/// throughput): stores through the BAR saturate from a few writers on, while the pipelined staging
/// path (8 MiB chunks, complete chunks batched per submission) outruns them on large fills with
/// several writers but loses on small ones, where its fill and drain dominate. Hence staged from
/// 48 MiB, the first size where staging wins clearly (at 32 MiB the two paths are level), with at
/// least 4 writers: with 1 or 2 writers the writers, not the transfer, are the limit and direct
/// stores win at every size measured (H200 crossover of 2026-11-29).
struct producer_thresholds {
    /// @brief Fewest writer threads (of the fill: `producer` passes the writers it uses) for the
    /// staged path.
    unsigned staged_min_threads = 4;
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
