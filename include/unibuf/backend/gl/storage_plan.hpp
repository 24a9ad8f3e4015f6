/// @file storage_plan.hpp
/// @brief The OpenGL backend's memory decision: what a `memory_request` becomes in GL (storage
/// and map flags, or a staging buffer, or a shadow copy), as a pure function of the request.
///
/// | policies | GL storage |
/// |---|---|
/// | access read/write | `GL_MAP_READ_BIT` / `GL_MAP_WRITE_BIT` / both, plus `GL_MAP_PERSISTENT_BIT`, mapped once |
/// | coherent, write_combined | `GL_MAP_COHERENT_BIT`: host writes reach later GL commands without a flush |
/// | explicit_flush | no coherent bit; writes mapped with `GL_MAP_FLUSH_EXPLICIT_BIT`, `flush` = `glFlushMappedNamedBufferRange`; `invalidate` = `glMemoryBarrier(GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT)` + fence wait |
/// | write_combined | write bit only, no `GL_CLIENT_STORAGE_BIT` (unless placement::host asks for system memory) |
/// | placement::host | `GL_CLIENT_STORAGE_BIT` |
/// | placement::device_mapped | no `GL_CLIENT_STORAGE_BIT` (the driver may place it in VRAM) |
/// | placement::automatic | `GL_CLIENT_STORAGE_BIT` when the host reads (cached readback), none otherwise |
/// | placement::device | storage without map bits; host access through a persistent-mapped staging buffer, `glCopyNamedBufferSubData` both ways, fenced |
///
/// With `gl_backend::options::force_traditional` every allocation takes the traditional path
/// instead, reported in `allocation_report::fallbacks`: a host shadow copy, `flush` =
/// `glBufferSubData`, `invalidate` = `glGetBufferSubData`.
#pragma once

#include "loader.hpp"

#include "../../core/memory_request.hpp"
#include "../../core/report.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace unibuf {

/// @brief How an allocation's host view reaches the GL buffer that kernels bind.
enum class gl_storage_mode : std::uint8_t {
    persistent,  ///< the host view is a persistent mapping of that buffer (zero-copy)
    staged,      ///< a device-only buffer plus a persistent-mapped staging buffer; copies both ways
    shadow,      ///< no persistent mapping: a host shadow copy, glBufferSubData / glGetBufferSubData
};

/// @brief Printable name of a storage mode.
[[nodiscard]] constexpr std::string_view to_string(gl_storage_mode m) noexcept {
    switch (m) {
        case gl_storage_mode::persistent: return "persistent";
        case gl_storage_mode::staged: return "staged";
        case gl_storage_mode::shadow: return "shadow";
    }
    return "?";
}

/// @brief What a request maps to in GL: the result of `gl_backend::decide`.
struct gl_storage_plan {
    gl_storage_mode mode = gl_storage_mode::persistent;
    GLbitfield storage_flags = 0;          ///< glBufferStorage flags of the buffer kernels bind
    GLbitfield map_flags = 0;              ///< glMapBufferRange access of it (persistent mode)
    GLbitfield staging_storage_flags = 0;  ///< staged mode: the staging buffer's storage flags
    GLbitfield staging_map_flags = 0;      ///< staged mode: its mapping
    GLenum usage_hint = 0;                 ///< shadow mode: glBufferData usage
    allocation_report report;
};

namespace detail {

/// @brief The map bits of the host access `req` asks for.
[[nodiscard]] inline GLbitfield gl_map_access(const memory_request& req) noexcept {
    return (req.host_read ? GLbitfield{GL_MAP_READ_BIT} : 0u) | (req.host_write ? GLbitfield{GL_MAP_WRITE_BIT} : 0u);
}

/// @brief The traditional path (`options::force_traditional`): glBufferData plus a host shadow copy.
[[nodiscard]] inline gl_storage_plan gl_shadow_plan(const memory_request& req) {
    gl_storage_plan p;
    allocation_report& r = p.report;
    r.requested = req.placement;
    r.memory_type = -1;
    p.mode = gl_storage_mode::shadow;
    p.usage_hint = !req.host_read ? GL_STREAM_DRAW : (!req.host_write ? GL_STREAM_READ : GL_DYNAMIC_DRAW);
    r.chosen = placement_kind::device;
    r.zero_copy = false;
    r.host_coherent = true;
    r.host_cached = true;
    r.fallbacks.push_back("persistent mapping disabled (gl_backend::options::force_traditional): the host view of "
                          "this " + std::string(to_string(req.placement)) +
                          " buffer is a shadow copy; flush = glBufferSubData, invalidate = glGetBufferSubData");
    r.reason = "traditional GL buffer (glBufferData) with a host shadow copy";
    return p;
}

/// @brief placement::device: storage without map bits and a persistent-mapped staging buffer.
[[nodiscard]] inline gl_storage_plan gl_staged_plan(const memory_request& req) {
    gl_storage_plan p;
    allocation_report& r = p.report;
    r.requested = req.placement;
    r.memory_type = -1;
    const GLbitfield access = gl_map_access(req);
    p.mode = gl_storage_mode::staged;
    p.storage_flags = 0;  // no map bits: memory the host never maps, GPU copies only
    p.staging_storage_flags = access | GL_MAP_PERSISTENT_BIT | GL_MAP_COHERENT_BIT | GL_CLIENT_STORAGE_BIT;
    p.staging_map_flags = access | GL_MAP_PERSISTENT_BIT | GL_MAP_COHERENT_BIT;
    r.chosen = placement_kind::device;
    r.zero_copy = false;
    r.host_coherent = true;
    r.host_cached = true;
    r.reason = "device placement: glBufferStorage without map bits; host access through a persistent-mapped "
               "staging buffer (GL_CLIENT_STORAGE_BIT) and glCopyNamedBufferSubData";
    return p;
}

/// @brief Every other placement: one persistent-mapped buffer, its flags from the table in the
/// file comment.
[[nodiscard]] inline gl_storage_plan gl_persistent_plan(const memory_request& req) {
    gl_storage_plan p;
    allocation_report& r = p.report;
    r.requested = req.placement;
    r.memory_type = -1;
    const GLbitfield access = gl_map_access(req);
    p.mode = gl_storage_mode::persistent;
    const bool coherent = !req.explicit_flush;
    bool client = false;
    std::string where;
    switch (req.placement) {
        case placement_kind::host:
            client = true;
            where = "placement::host: GL_CLIENT_STORAGE_BIT asks for system memory";
            break;
        case placement_kind::device_mapped:
            where = "placement::device_mapped: no GL_CLIENT_STORAGE_BIT, so the driver may place it in "
                    "device memory (GL cannot require it)";
            break;
        default:
            client = req.host_read && !req.write_combined;
            where = client ? "placement::automatic, host reads: GL_CLIENT_STORAGE_BIT for cached system memory"
                           : "placement::automatic, host only writes: no GL_CLIENT_STORAGE_BIT, the driver chooses";
            break;
    }
    p.storage_flags = access | GL_MAP_PERSISTENT_BIT | (coherent ? GLbitfield{GL_MAP_COHERENT_BIT} : 0u) |
                      (client ? GLbitfield{GL_CLIENT_STORAGE_BIT} : 0u);
    p.map_flags = access | GL_MAP_PERSISTENT_BIT |
                  (coherent ? GLbitfield{GL_MAP_COHERENT_BIT} : (req.host_write ? GLbitfield{GL_MAP_FLUSH_EXPLICIT_BIT} : 0u));
    r.chosen = client ? placement_kind::host
                      : (req.placement == placement_kind::automatic ? placement_kind::device_mapped : req.placement);
    r.zero_copy = true;
    r.host_coherent = coherent;
    r.host_cached = client;
    r.reason = "persistent-mapped glBufferStorage (" + where + ")" +
               (req.write_combined ? "; write-combined: write bit only" : "") +
               (coherent ? "; GL_MAP_COHERENT_BIT" : "; non-coherent: explicit flush / client-mapped barrier");
    return p;
}

/// @brief The GL storage for `req` (the file comment's table); the shadow copy when
/// `force_traditional`.
[[nodiscard]] inline gl_storage_plan gl_plan_storage(const memory_request& req, bool force_traditional) {
    if (force_traditional) return gl_shadow_plan(req);
    if (req.placement == placement_kind::device) return gl_staged_plan(req);
    return gl_persistent_plan(req);
}

} // namespace detail

} // namespace unibuf
