/// @file fwd.hpp
/// @brief Every public class template and class of unibuf, declared, on one screen.
///
/// Declarations only: include the layer headers (or `unibuf.hpp`, `vulkan.hpp`, `opengl.hpp`) to
/// use them. A default template argument may be given once in C++, so defaults stay on the one
/// definition; they are written beside each declaration here. Buffers take their defaults from
/// `default_policies` (policy/policy_set.hpp).
#pragma once

#include "backend/concepts.hpp"

#include <cstddef>

namespace unibuf {

// ---- policy/ -----------------------------------------------------------------------------------
namespace access { struct read_only; struct write_only; struct read_write; }            // default read_write
namespace coherence { struct coherent; struct explicit_flush; struct write_combined; }   // default coherent
namespace placement { struct host; struct device; struct device_mapped; struct automatic; }  // default automatic
namespace sync { struct none; struct fenced; struct lazy; }                              // default fenced
struct default_policies;       // the four defaults above, as member types
template <class... Policies>
struct policy_set;             // any order, at most one per category, missing ones from default_policies

// ---- backend/ (the contract: backend/concepts.hpp) --------------------------------------------
class host_backend;            // backend/host/host_backend.hpp
class vulkan_context;          // backend/vulkan/context.hpp        (target unibuf::vulkan)
class vulkan_backend;          // backend/vulkan/vulkan_backend.hpp
class vulkan_kernel;           // backend/vulkan/kernel.hpp
class gl_backend;              // backend/gl/gl_backend.hpp         (target unibuf::opengl)
class gl_kernel;               // backend/gl/kernel.hpp

// ---- buffer/ -------------------------------------------------------------------------------------
// The one class behind every buffer type: basic_buffer<T, B, Policies...> (an alias, policies in
// any order) names basic_buffer_of<T, B, resolved access, coherence, placement, sync>.
template <class T, Backend B, class Access, class Coherence, class Placement, class Sync>
class basic_buffer_of;
//   upload_buffer<T, B>   = write_only, write_combined, automatic, fenced
//   readback_buffer<T, B> = read_only,  coherent,       host,      fenced
//   shared_buffer<T, B>   = read_write, coherent,       automatic, lazy
//   device_buffer<T, B>   = read_write, coherent,       device,    lazy
template <class T>
class write_only_view;         // buffer/view.hpp: elements assignable, never readable (rule R8)
template <class T>
class write_only_ref;
template <class Buf>
class host_write_scope;        // buffer/write_scope.hpp: made by basic_buffer_of::write_scope()
// buffer/state.hpp: enum class buffer_state; buffer/dispatch.hpp: bind(buf, usage), dispatch(...)

// ---- transfer/ -----------------------------------------------------------------------------------
class block_allocator;         // transfer/block_allocator.hpp (TLSF sub-allocation, no GPU code)
namespace pool_locking { struct unlocked; struct mutex; }
struct pool_config;            // transfer/pool/pool_config.hpp
template <class B, class Locking, class Access, class Coherence, class Placement, class Sync>
class basic_buffer_pool_of;    // transfer/pool/buffer_pool.hpp; aliases, policies in any order:
//   basic_buffer_pool<B, Locking, Policies...>, buffer_pool<B, Policies...> (unlocked),
//   locked_buffer_pool<B, Policies...> (mutex)
template <class Buf, std::size_t N>
class ring;                    // transfer/ring.hpp: claim -> write -> publish / read -> release
class writer_team;             // transfer/writer_team.hpp
template <Backend B>
class producer;                // transfer/producer.hpp: writer threads fill a buffer
template <FenceSource B, class Coherence, class Placement>
class upload_stream;           // transfer/upload_stream.hpp; defaults write_combined, automatic
template <class Buf>
class gl_parallel_writes;      // transfer/gl/parallel_writes.hpp (target unibuf::opengl)

template <class T>
class task;                    // async/task.hpp: lazy coroutine task; default T = void
class thread_pool;             // async/thread_pool.hpp: the scheduler, passed in explicitly
template <class B, std::size_t Slots, class InBuf, class OutBuf>
class pipeline;                // async/pipeline.hpp; defaults Slots = 3, upload_buffer / readback_buffer of float

struct conv2d_desc;            // ops/conv2d/conv2d_desc.hpp
template <class B>
class conv2d;                  // ops/conv2d/conv2d.hpp (the backend's part in ops/<backend>/conv2d.hpp)

} // namespace unibuf
