/// @file glsl_rewrite.hpp
/// @brief The GLSL rewrite that lets a GL compute kernel run dispatches larger than
/// `GL_MAX_COMPUTE_WORK_GROUP_COUNT`.
///
/// GL has no `glDispatchComputeBase`: such a dispatch runs as several `glDispatchCompute` calls,
/// and the kernel learns each one's base group from a uniform. The rewrite turns the kernel's
/// `gl_WorkGroupID` / `gl_GlobalInvocationID` / `gl_NumWorkGroups` into macros that add the base
/// (and give the whole dispatch's group count), declared after the source's leading
/// `#version` / `#extension` lines, with `#line` keeping compiler messages' line numbers.
/// The uniforms are `unibuf_group_base` and `unibuf_group_count` (`gl_kernel` sets them).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace unibuf::detail {

/// @brief The declarations put after the leading directives of a rewritten kernel.
inline constexpr std::string_view gl_group_base_prologue =
    "uniform uvec3 unibuf_group_base;\n"
    "uniform uvec3 unibuf_group_count;\n"
    "#define unibuf_WorkGroupID (gl_WorkGroupID + unibuf_group_base)\n"
    "#define unibuf_GlobalInvocationID (gl_GlobalInvocationID + unibuf_group_base * gl_WorkGroupSize)\n"
    "#define unibuf_NumWorkGroups (unibuf_group_count)\n";

/// @brief Step 1: `src` with every whole-word `gl_WorkGroupID`, `gl_GlobalInvocationID` and
/// `gl_NumWorkGroups` renamed to `unibuf_...`, into `body`; false when none of them occurs.
inline bool gl_rename_group_builtins(std::string_view src, std::string& body) {
    static constexpr std::string_view names[] = {"gl_WorkGroupID", "gl_GlobalInvocationID", "gl_NumWorkGroups"};
    auto is_ident = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    };
    body.clear();
    bool used = false;
    for (std::size_t i = 0; i < src.size();) {
        bool replaced = false;
        if (src[i] == 'g' && (i == 0 || !is_ident(src[i - 1]))) {
            for (std::string_view n : names) {
                if (src.substr(i, n.size()) == n && (i + n.size() == src.size() || !is_ident(src[i + n.size()]))) {
                    body += "unibuf_";
                    body += n.substr(3);
                    i += n.size();
                    replaced = used = true;
                    break;
                }
            }
        }
        if (!replaced) body += src[i++];
    }
    return used;
}

/// @brief Where declarations may go in a GLSL source: just after its leading directives.
struct gl_directive_end {
    std::size_t offset = 0;  ///< byte offset after the last leading `#version` / `#extension` line
    int line = 1;            ///< the source line number found at `offset`
};

/// @brief Step 2: the end of the leading directives: lines (after blank lines and comments)
/// starting with `#version` or `#extension`.
inline gl_directive_end gl_find_directive_end(std::string_view body) {
    gl_directive_end at;
    std::size_t pos = 0;
    int line = 1;
    bool in_block_comment = false;
    while (pos < body.size()) {
        const std::size_t eol = std::min(body.find('\n', pos), body.size());
        const std::string_view l = body.substr(pos, eol - pos);
        const std::size_t first = l.find_first_not_of(" \t\r");
        const std::string_view t = first == std::string_view::npos ? std::string_view{} : l.substr(first);
        const bool directive = !in_block_comment && (t.starts_with("#version") || t.starts_with("#extension"));
        const bool blank_or_comment = in_block_comment || t.empty() || t.starts_with("//") || t.starts_with("/*");
        if (t.starts_with("/*") && t.find("*/") == std::string_view::npos) in_block_comment = true;
        else if (in_block_comment && t.find("*/") != std::string_view::npos) in_block_comment = false;
        if (!directive && !blank_or_comment) break;
        pos = eol + 1;
        ++line;
        if (directive) {
            at.offset = std::min(pos, body.size());
            at.line = line;
        }
    }
    return at;
}

/// @brief Rewrites `src` as the file comment says, into `out`. Returns false (and leaves `out`
/// empty) when the source uses none of the three built-ins, so that it can be compiled as given.
inline bool gl_add_group_base(std::string_view src, std::string& out) {
    std::string body;
    if (!gl_rename_group_builtins(src, body)) return false;
    const gl_directive_end at = gl_find_directive_end(body);
    out.assign(body, 0, at.offset);
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += gl_group_base_prologue;
    out += "#line " + std::to_string(at.line) + "\n";
    out.append(body, at.offset, std::string::npos);
    return true;
}

} // namespace unibuf::detail
