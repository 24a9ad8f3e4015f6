// The properties the fuzzers check, shared by the libFuzzer entry points (clang) and the seeded
// random driver (every compiler). A broken property prints what was fed and aborts, so that
// libFuzzer saves the input and the driver's test fails with it.
//
// 1. The fixture-table parser (`parse_memory_table`): any text is either accepted or rejected
//    with `std::system_error` / `errc::invalid_argument` whose message names the line
//    ("memory table line N"); an accepted table is within Vulkan's limits (at most 16 heaps and
//    32 types, every type on a listed heap) and survives `format_memory_table` -> parse unchanged.
// 2. Memory-type selection (`select_memory`, `select_produce_path`, `round_to_atom`) over tables,
//    budgets, thresholds and requests built from the bytes: it never throws, is deterministic, and
//    every decision obeys the file comment of memory_selection.hpp (a type the request allows and
//    can use, with room in its heap; host-visible and, unless explicit_flush, coherent when the
//    host maps it; a coherent host-visible staging buffer when staged); every failure carries one
//    of its three documented codes and a message.
#pragma once

#include <unibuf/backend/vulkan/memory_selection.hpp>
#include <unibuf/backend/vulkan/memory_table.hpp>
#include <unibuf/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

namespace unibuf::fuzz {

[[noreturn]] inline void fail(const char* property, std::string_view input, const std::string& detail) {
    std::fprintf(stderr, "unibuf fuzz: property broken: %s\n  detail: %s\n  input (%zu bytes): \"", property,
                 detail.c_str(), input.size());
    for (const char c : input) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f && c != '\\' && c != '"') std::fputc(c, stderr);
        else std::fprintf(stderr, "\\x%02x", u);
    }
    std::fputs("\"\n", stderr);
    std::abort();
}

inline bool same_table(const vulkan::memory_table& a, const vulkan::memory_table& b) {
    if (a.device != b.device || a.source != b.source || a.non_coherent_atom != b.non_coherent_atom) return false;
    if (a.heaps.size() != b.heaps.size() || a.types.size() != b.types.size()) return false;
    for (std::size_t i = 0; i < a.heaps.size(); ++i)
        if (a.heaps[i].size != b.heaps[i].size || a.heaps[i].flags != b.heaps[i].flags) return false;
    for (std::size_t i = 0; i < a.types.size(); ++i)
        if (a.types[i].heap != b.types[i].heap || a.types[i].flags != b.types[i].flags) return false;
    return true;
}

/// Property 1 on one text.
inline void check_memory_table_text(std::string_view text) {
    vulkan::memory_table t;
    try {
        t = vulkan::parse_memory_table(text);
    } catch (const std::system_error& e) {
        const std::string what = e.what();
        if (e.code() != make_error_code(errc::invalid_argument))
            fail("a rejected table has errc::invalid_argument", text, what);
        const auto at = what.find("memory table line ");
        if (at == std::string::npos || at + 18 >= what.size() || what[at + 18] < '1' || what[at + 18] > '9')
            fail("a rejection names the line", text, what);
        return;
    } catch (const std::exception& e) {
        fail("the parser throws only std::system_error", text, e.what());
    }
    if (t.heaps.empty() || t.types.empty() || t.heaps.size() > 16 || t.types.size() > 32)
        fail("an accepted table has 1-16 heaps and 1-32 types", text,
             std::to_string(t.heaps.size()) + " heaps, " + std::to_string(t.types.size()) + " types");
    for (const auto& ty : t.types)
        if (ty.heap >= t.heaps.size()) fail("every accepted type is on a listed heap", text, std::to_string(ty.heap));
    if (t.non_coherent_atom == 0) fail("an accepted table has a positive nonCoherentAtomSize", text, "0");
    const std::string again = vulkan::format_memory_table(t);
    try {
        if (!same_table(t, vulkan::parse_memory_table(again)))
            fail("format -> parse gives the same table", text, again);
    } catch (const std::exception& e) {
        fail("a formatted table parses", text, again + " -> " + e.what());
    }
}

/// Reads the fuzzer's bytes as little-endian numbers; zeros past the end.
class byte_reader {
public:
    byte_reader(const std::uint8_t* data, std::size_t size) noexcept : p_(data), n_(size) {}
    std::uint64_t u64() noexcept { return take(8); }
    std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(take(4)); }
    std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(take(1)); }
    bool flag() noexcept { return (u8() & 1u) != 0; }
    /// A size skewed towards the edges: small, around a power of two, or near 2^64.
    std::uint64_t size() noexcept {
        const std::uint8_t kind = u8() % 4;
        const std::uint64_t v = u64();
        switch (kind) {
            case 0: return v % 4096;
            case 1: return (std::uint64_t{1} << (v % 64)) + (v >> 60) - 8;
            case 2: return std::numeric_limits<std::uint64_t>::max() - (v % 4096);
            default: return v;
        }
    }

private:
    std::uint64_t take(std::size_t bytes) noexcept {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < bytes; ++i) {
            const std::uint64_t b = i < n_ ? p_[i] : 0;
            v |= b << (8 * i);
        }
        const std::size_t used = bytes < n_ ? bytes : n_;
        p_ += used;
        n_ -= used;
        return v;
    }
    const std::uint8_t* p_;
    std::size_t n_;
};

inline std::string describe(const memory_request& r, const vulkan::memory_table& t) {
    return vulkan::describe_request(r) + ", " + std::to_string(r.size_bytes) + " bytes, on:\n" +
           vulkan::format_memory_table(t);
}

/// Property 2 on one input.
inline void check_memory_selection(const std::uint8_t* data, std::size_t size) {
    using namespace vulkan;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    byte_reader in(data, size);
    memory_table t;
    const std::size_t heaps = 1 + in.u8() % 16, types = 1 + in.u8() % 32;
    for (std::size_t i = 0; i < heaps; ++i) t.heaps.push_back({in.size(), in.u8() & 0x3u});
    for (std::size_t i = 0; i < types; ++i)
        t.types.push_back({in.u8(), static_cast<std::uint32_t>(in.u8() % heaps)});
    t.non_coherent_atom = 1 + in.u64() % 4096;

    memory_request r;
    r.size_bytes = in.size();
    r.host_read = in.flag();
    r.host_write = in.flag();
    r.explicit_flush = in.flag();
    r.write_combined = in.flag();
    r.placement = static_cast<placement_kind>(in.u8() % 4);
    r.sync = static_cast<sync_kind>(in.u8() % 3);
    r.device_write = in.flag();

    std::vector<std::uint64_t> used(heaps);
    for (auto& u : used) u = in.flag() ? in.size() : 0;
    const double fraction = static_cast<double>(in.u8()) / 200.0;  // 0 to 1.275: also past 1
    const heap_budget budget = heap_budget::from_heap_sizes(t, fraction, used);
    selection_thresholds th;
    th.staging_min_bytes = in.size();
    th.mapped_window_share = static_cast<double>(in.u8()) / 128.0;
    th.force_staging = in.flag();
    const std::uint32_t allowed = in.flag() ? ~0u : in.u32();

    memory_decision d;
    try {
        d = select_memory(r, t, budget, th, allowed);
    } catch (const std::exception& e) {
        fail("select_memory does not throw", input, describe(r, t) + e.what());
    }
    const memory_decision again = select_memory(r, t, budget, th, allowed);
    if (again.error != d.error || again.staged != d.staged || again.device_type != d.device_type ||
        again.staging_type != d.staging_type || again.message != d.message)
        fail("select_memory is deterministic", input, describe(r, t));

    if (!d) {
        if (d.error != make_error_code(errc::out_of_memory) && d.error != make_error_code(errc::unsupported) &&
            d.error != make_error_code(errc::invalid_argument))
            fail("a failed selection has one of its three codes", input, describe(r, t) + d.error.message());
        if (d.message.empty()) fail("a failed selection says why", input, describe(r, t));
    } else {
        auto usable = [&](int i, const char* which) {
            if (i < 0 || static_cast<std::size_t>(i) >= t.types.size())
                fail("a decision's types exist", input, describe(r, t) + which + " type " + std::to_string(i));
            const auto& ty = t.types[static_cast<std::size_t>(i)];
            if (i < 32 && ((allowed >> i) & 1u) == 0)
                fail("a decision uses allowed types only", input, describe(r, t) + which + " type " + std::to_string(i));
            if ((ty.flags & vulkan::detail::unusable_memory) != 0)
                fail("a decision never uses protected/lazy/AMD-only types", input, describe(r, t) + which);
            if (r.size_bytes > budget.of(t, ty.heap))
                fail("a decision's heap has room for the buffer", input, describe(r, t) + which);
            return ty.flags;
        };
        const std::uint32_t dev = usable(d.device_type, "device");
        if (d.staged) {
            if (r.sync == sync_kind::none) fail("sync::none is never staged", input, describe(r, t));
            const std::uint32_t st = usable(d.staging_type, "staging");
            const std::uint32_t need = memory_property::host_visible | memory_property::host_coherent;
            if ((st & need) != need) fail("a staging buffer is host-visible and coherent", input, describe(r, t));
        } else {
            if (r.placement == placement_kind::device) fail("placement::device is always staged", input, describe(r, t));
            if ((dev & memory_property::host_visible) == 0)
                fail("zero-copy memory is host-visible", input, describe(r, t));
            if (!r.explicit_flush && (dev & memory_property::host_coherent) == 0)
                fail("zero-copy memory without explicit_flush is coherent", input, describe(r, t));
        }
        if (d.report.reason.empty()) fail("a decision says why", input, describe(r, t));
    }

    // The fill path, for any type index (also negative or past the table).
    const int device_type = static_cast<int>(in.u32() % 40) - 4;
    const produce_plan plan = select_produce_path(t, device_type, in.flag(), in.size(), in.u8(), producer_thresholds{});
    if (plan.reason.empty()) fail("a fill path says why", input, describe(r, t));

    // Flush/invalidate ranges: inside the allocation, atom-aligned at the start, covering the bytes.
    const std::uint64_t alloc = in.size(), off = in.size(), n = in.size(), atom = in.u8() % 2 ? in.u64() : 64;
    const atom_range a = round_to_atom(off, n, atom, alloc);
    if (n == 0 || off >= alloc) {
        if (a.size != 0) fail("an empty or outside range rounds to nothing", input, std::to_string(a.size));
    } else {
        const std::uint64_t at = atom == 0 ? 1 : atom;
        const std::uint64_t end = n >= alloc - off ? alloc : off + n;
        if (a.offset % at != 0 || a.offset > off || a.size > alloc - a.offset || a.offset + a.size < end)
            fail("an atom range is aligned, inside the allocation and covers the bytes", input,
                 std::to_string(off) + "+" + std::to_string(n) + " atom " + std::to_string(atom) + " of " +
                     std::to_string(alloc) + " -> " + std::to_string(a.offset) + "+" + std::to_string(a.size));
    }
}

} // namespace unibuf::fuzz
