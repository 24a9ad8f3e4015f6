/// @file fwd.hpp
/// @brief Every public template of unibuf with its defaults, on one screen.
#pragma once

#include <cstddef>

namespace unibuf {

// policies (policy/*.hpp)                 defaults (default_policies)
namespace access { struct read_only; struct write_only; struct read_write; }          // read_write
namespace coherence { struct coherent; struct explicit_flush; struct write_combined; } // coherent
namespace placement { struct host; struct device; struct device_mapped; struct automatic; } // automatic
namespace sync { struct none; struct fenced; struct lazy; }                            // fenced

// backends (backend/<name>/): host_backend; vulkan_backend and gl_backend in their own targets
class host_backend;

// buffer.hpp: basic_buffer<T, Backend, Policies...> (policies in any order, at most one per category,
//             missing ones defaulted) is an alias of the one class of the resolved policies,
//             basic_buffer_of<T, Backend, Access, Coherence, Placement, Sync>; the aliases below too:
//   upload_buffer<T, B>   = write_only, write_combined, automatic, fenced
//   readback_buffer<T, B> = read_only,  coherent,       host,      fenced
//   shared_buffer<T, B>   = read_write, coherent,       automatic, lazy
//   device_buffer<T, B>   = read_write, coherent,       device,    lazy
// view.hpp: write_only_view<T>, write_only_ref<T>
// state.hpp: buffer_state {uninitialized, host_only, device_only, synchronized, host_dirty, device_dirty}
// dispatch.hpp: bind(buf, usage), dispatch(backend, kernel, groups, push, bindings...)
// alloc/block_allocator.hpp: block_allocator (TLSF sub-allocation, no GPU code)
// pool.hpp: basic_buffer_pool<B, Locking, Policies...>, buffer_pool<B, Policies...> (unlocked),
//           locked_buffer_pool<B, Policies...>, pool_config
// ring.hpp: ring<Buffer, N> (claim -> write -> publish / read -> release, per-slot fences)
// produce.hpp: producer<B> (writer threads fill a buffer: direct or pipelined staging), writer_team,
//              produce_options, produce_result<Fence>
// stream.hpp: upload_stream<B, Coherence, Placement> (one mapped ring of segments, a fence per segment)

} // namespace unibuf
