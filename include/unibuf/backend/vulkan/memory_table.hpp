/// @file memory_table.hpp
/// @brief A device's Vulkan memory types and heaps as plain data, and the text format of
/// `test/fixtures/vulkan-memory/*.txt` (read and written here). No Vulkan header is included.
///
/// @code
/// auto table = unibuf::vulkan::parse_memory_table(text);   // or vulkan_context::capabilities().memory
/// for (const auto& t : table.types) std::puts(unibuf::vulkan::describe_memory_flags(t.flags).c_str());
/// @endcode
#pragma once

#include "../../core/error.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace unibuf::vulkan {

/// @brief Memory-type property bits; the values equal `VkMemoryPropertyFlagBits`.
namespace memory_property {
inline constexpr std::uint32_t device_local = 0x1;         ///< VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
inline constexpr std::uint32_t host_visible = 0x2;         ///< VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
inline constexpr std::uint32_t host_coherent = 0x4;        ///< VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
inline constexpr std::uint32_t host_cached = 0x8;          ///< VK_MEMORY_PROPERTY_HOST_CACHED_BIT
inline constexpr std::uint32_t lazily_allocated = 0x10;    ///< VK_MEMORY_PROPERTY_LAZILY_ALLOCATED_BIT
inline constexpr std::uint32_t protected_memory = 0x20;    ///< VK_MEMORY_PROPERTY_PROTECTED_BIT
inline constexpr std::uint32_t device_coherent_amd = 0x40; ///< VK_MEMORY_PROPERTY_DEVICE_COHERENT_BIT_AMD
inline constexpr std::uint32_t device_uncached_amd = 0x80; ///< VK_MEMORY_PROPERTY_DEVICE_UNCACHED_BIT_AMD
} // namespace memory_property

/// @brief Memory-heap property bits; the values equal `VkMemoryHeapFlagBits`.
namespace heap_property {
inline constexpr std::uint32_t device_local = 0x1;    ///< VK_MEMORY_HEAP_DEVICE_LOCAL_BIT
inline constexpr std::uint32_t multi_instance = 0x2;  ///< VK_MEMORY_HEAP_MULTI_INSTANCE_BIT
} // namespace heap_property

/// @brief Most heaps a device reports (`VK_MAX_MEMORY_HEAPS`).
inline constexpr std::size_t max_memory_heaps = 16;
/// @brief Most memory types a device reports (`VK_MAX_MEMORY_TYPES`); `memoryTypeBits` masks are 32 bits.
inline constexpr std::size_t max_memory_types = 32;

/// @brief One memory heap: its size and property bits (`heap_property`).
struct memory_heap {
    std::uint64_t size = 0;
    std::uint32_t flags = 0;
};

/// @brief One memory type: its property bits (`memory_property`) and the heap it draws from.
struct memory_type {
    std::uint32_t flags = 0;
    std::uint32_t heap = 0;
};

/// @brief A device's memory-property table (what `vkGetPhysicalDeviceMemoryProperties` returns,
/// plus `nonCoherentAtomSize`), the only device input of memory-type selection.
struct memory_table {
    std::string device;                  ///< free text naming the device
    std::string source;                  ///< where the numbers come from (fixtures)
    std::uint64_t non_coherent_atom = 1; ///< VkPhysicalDeviceLimits::nonCoherentAtomSize
    std::vector<memory_heap> heaps;
    std::vector<memory_type> types;

    /// @brief True when every heap is device-local (integrated GPUs, CPU devices): system RAM is
    /// the device's memory, so no placement needs a staging copy.
    [[nodiscard]] bool unified() const noexcept {
        if (heaps.empty()) return false;
        for (const auto& h : heaps)
            if ((h.flags & heap_property::device_local) == 0) return false;
        return true;
    }

    /// @brief Index of the largest device-local heap (the VRAM heap of a discrete GPU), -1 if none.
    [[nodiscard]] int main_device_heap() const noexcept {
        int best = -1;
        for (std::size_t i = 0; i < heaps.size(); ++i)
            if ((heaps[i].flags & heap_property::device_local) != 0 &&
                (best < 0 || heaps[i].size > heaps[static_cast<std::size_t>(best)].size))
                best = static_cast<int>(i);
        return best;
    }
};

namespace detail {
struct flag_name {
    std::uint32_t bit;
    std::string_view name;
};
inline constexpr flag_name type_flag_names[] = {
    {memory_property::device_local, "DEVICE_LOCAL"},
    {memory_property::host_visible, "HOST_VISIBLE"},
    {memory_property::host_coherent, "HOST_COHERENT"},
    {memory_property::host_cached, "HOST_CACHED"},
    {memory_property::lazily_allocated, "LAZILY_ALLOCATED"},
    {memory_property::protected_memory, "PROTECTED"},
    {memory_property::device_coherent_amd, "DEVICE_COHERENT_AMD"},
    {memory_property::device_uncached_amd, "DEVICE_UNCACHED_AMD"},
};
inline constexpr flag_name heap_flag_names[] = {
    {heap_property::device_local, "DEVICE_LOCAL"},
    {heap_property::multi_instance, "MULTI_INSTANCE"},
};

template <std::size_t N>
[[nodiscard]] std::string describe(std::uint32_t flags, const flag_name (&names)[N]) {
    std::string s;
    for (const auto& n : names) {
        if ((flags & n.bit) == 0) continue;
        if (!s.empty()) s += '|';
        s += n.name;
        flags &= ~n.bit;
    }
    if (flags != 0) {
        if (!s.empty()) s += '|';
        s += "0x" + [&] {
            char buf[16];
            auto r = std::to_chars(buf, buf + sizeof buf, flags, 16);
            return std::string(buf, r.ptr);
        }();
    }
    return s.empty() ? std::string("-") : s;
}

template <std::size_t N>
[[nodiscard]] bool parse_flags(std::string_view text, const flag_name (&names)[N], std::uint32_t& out) {
    out = 0;
    if (text == "-") return true;
    while (!text.empty()) {
        const auto bar = text.find('|');
        const std::string_view word = text.substr(0, bar);
        bool found = false;
        for (const auto& n : names)
            if (n.name == word) {
                out |= n.bit;
                found = true;
            }
        if (!found) return false;
        if (bar == std::string_view::npos) break;
        text.remove_prefix(bar + 1);
    }
    return true;
}

[[nodiscard]] inline std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

/// Splits off the next whitespace-separated word of `s`.
[[nodiscard]] inline std::string_view next_word(std::string_view& s) noexcept {
    s = trim(s);
    const auto end = s.find_first_of(" \t");
    const std::string_view w = s.substr(0, end);
    s = end == std::string_view::npos ? std::string_view{} : s.substr(end);
    return w;
}

template <class U>
[[nodiscard]] bool parse_number(std::string_view w, U& out) noexcept {
    const auto r = std::from_chars(w.data(), w.data() + w.size(), out);
    return r.ec == std::errc{} && r.ptr == w.data() + w.size();
}
} // namespace detail

/// @brief `DEVICE_LOCAL|HOST_VISIBLE` style name of memory-type property bits ("-" for none).
[[nodiscard]] inline std::string describe_memory_flags(std::uint32_t flags) {
    return detail::describe(flags, detail::type_flag_names);
}
/// @brief `DEVICE_LOCAL` style name of heap property bits ("-" for none).
[[nodiscard]] inline std::string describe_heap_flags(std::uint32_t flags) {
    return detail::describe(flags, detail::heap_flag_names);
}

/// @brief Reads the fixture format (`device`, `source`, `nonCoherentAtomSize`, `heap <i> <size>
/// <flags>`, `type <i> <heap> <flags>` lines; see test/fixtures/vulkan-memory/README.md).
/// Heaps and types must be listed in index order, at most `max_memory_heaps` / `max_memory_types`
/// of them; every type must name an existing heap.
/// @throws std::system_error errc::invalid_argument naming the line and what was expected (a table
/// without heaps or types: the line after its last)
[[nodiscard]] inline memory_table parse_memory_table(std::string_view text) {
    memory_table t;
    std::size_t line_no = 0;
    auto fail = [&](const std::string& what, std::string_view line) {
        throw_error(errc::invalid_argument, "unibuf: memory table line " + std::to_string(line_no) + " (\"" +
                                                std::string(line) + "\"): " + what);
    };
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view raw = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        const std::string_view line = detail::trim(raw);
        if (line.empty() || line.front() == '#') continue;
        std::string_view rest = line;
        const std::string_view key = detail::next_word(rest);
        if (key == "device") {
            t.device = std::string(detail::trim(rest));
        } else if (key == "source") {
            t.source = std::string(detail::trim(rest));
        } else if (key == "nonCoherentAtomSize") {
            if (!detail::parse_number(detail::trim(rest), t.non_coherent_atom) || t.non_coherent_atom == 0)
                fail("expected a positive byte count", line);
        } else if (key == "heap" || key == "type") {
            std::uint32_t index = 0;
            const std::string_view idx = detail::next_word(rest);
            const std::string_view second = detail::next_word(rest);
            const std::string_view flags = detail::next_word(rest);
            if (!detail::trim(rest).empty() || flags.empty()) fail("expected '" + std::string(key) + " <index> <" +
                                                                       (key == "heap" ? "size" : "heap") + "> <flags>'",
                                                                   line);
            if (!detail::parse_number(idx, index)) fail("index is not a number", line);
            if (key == "heap") {
                memory_heap h;
                if (index != t.heaps.size())
                    fail("heap index " + std::to_string(index) + " out of order; expected " +
                             std::to_string(t.heaps.size()),
                         line);
                if (index >= max_memory_heaps)
                    fail("a device has at most " + std::to_string(max_memory_heaps) + " heaps (VK_MAX_MEMORY_HEAPS)", line);
                if (!detail::parse_number(second, h.size)) fail("heap size is not a number", line);
                if (!detail::parse_flags(flags, detail::heap_flag_names, h.flags)) fail("unknown heap flag", line);
                t.heaps.push_back(h);
            } else {
                memory_type ty;
                if (index != t.types.size())
                    fail("type index " + std::to_string(index) + " out of order; expected " +
                             std::to_string(t.types.size()),
                         line);
                if (index >= max_memory_types)
                    fail("a device has at most " + std::to_string(max_memory_types) + " memory types (VK_MAX_MEMORY_TYPES)",
                         line);
                if (!detail::parse_number(second, ty.heap) || ty.heap >= t.heaps.size())
                    fail("heap index must name one of the " + std::to_string(t.heaps.size()) +
                             " heaps listed before it",
                         line);
                if (!detail::parse_flags(flags, detail::type_flag_names, ty.flags)) fail("unknown memory-type flag", line);
                t.types.push_back(ty);
            }
        } else {
            fail("unknown key '" + std::string(key) + "'", line);
        }
    }
    if (t.heaps.empty() || t.types.empty())
        throw_error(errc::invalid_argument, "unibuf: memory table line " + std::to_string(line_no + 1) +
                                                " (the end of the table): it lists " + std::to_string(t.heaps.size()) +
                                                " heaps and " + std::to_string(t.types.size()) +
                                                " types; at least one of each is needed");
    return t;
}

/// @brief Writes `t` in the fixture format (round-trips through `parse_memory_table`).
[[nodiscard]] inline std::string format_memory_table(const memory_table& t) {
    std::string s;
    if (!t.device.empty()) s += "device " + t.device + "\n";
    if (!t.source.empty()) s += "source " + t.source + "\n";
    s += "nonCoherentAtomSize " + std::to_string(t.non_coherent_atom) + "\n";
    for (std::size_t i = 0; i < t.heaps.size(); ++i)
        s += "heap " + std::to_string(i) + " " + std::to_string(t.heaps[i].size) + " " +
             describe_heap_flags(t.heaps[i].flags) + "\n";
    for (std::size_t i = 0; i < t.types.size(); ++i)
        s += "type " + std::to_string(i) + " " + std::to_string(t.types[i].heap) + " " +
             describe_memory_flags(t.types[i].flags) + "\n";
    return s;
}

} // namespace unibuf::vulkan
