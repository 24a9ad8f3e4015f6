/// @file loader.hpp
/// @brief Where the OpenGL backend's GL declarations come from.
///
/// The backend calls GL by its ordinary names (`glBufferStorage`, `glDispatchCompute`, ...), so it
/// works with whichever loader declares them, on whichever context is current:
/// - default: glad 2 (`<glad/gl.h>`, GL 4.6 core). The `unibuf::opengl` CMake target generates it at
///   build time (`UNIBUF_GLAD=generate`) or takes your package manager's glad 2 (`UNIBUF_GLAD=package`).
///   Exactly one translation unit of the program includes `glad_implementation.hpp`, which defines
///   glad's function pointers; `egl_context` loads them, or call `gladLoadGL(your_get_proc)` on your
///   own context.
/// - your own loader: define `UNIBUF_GL_LOADER_HEADER` before including any unibuf GL header, e.g.
///   `-DUNIBUF_GL_LOADER_HEADER="<epoxy/gl.h>"` or `-DUNIBUF_GL_LOADER_HEADER=\"my_gl.h\"`. The header
///   must declare GL 4.4 (the buffer-storage enums are checked below); with GL 4.5 declarations
///   (`GL_VERSION_4_5`) the direct-state-access calls are compiled in as well. At run time the backend
///   needs an OpenGL 4.4 context, or a 4.3 one with GL_ARB_buffer_storage, and loaded on it: compute
///   and storage buffers (glDispatchCompute, glBindBufferRange, glMemoryBarrier, shader/program
///   calls), glFenceSync/glClientWaitSync/glDeleteSync, glCopyBufferSubData,
///   glBufferData/glBufferSubData/glGetBufferSubData, glMapBufferRange/glFlushMappedBufferRange and
///   glBufferStorage; the named (DSA) variants are used where GL 4.5 or GL_ARB_direct_state_access
///   is present.
///
/// Header-only use without CMake: generate glad once with
/// `python3 -m glad --reproducible --api gl:core=4.6,egl=1.5 --extensions GL_ARB_buffer_storage,GL_ARB_direct_state_access,GL_ARB_compute_shader,GL_ARB_shader_storage_buffer_object,GL_KHR_debug,EGL_EXT_platform_base,EGL_EXT_platform_device,EGL_EXT_device_base,EGL_EXT_device_enumeration,EGL_EXT_device_query,EGL_MESA_platform_surfaceless,EGL_KHR_create_context,EGL_KHR_surfaceless_context,EGL_KHR_no_config_context --out-path glad c --header-only --loader`
/// and add `glad/include` to the include path (link `-ldl` on glibc older than 2.34).
#pragma once

#if defined(UNIBUF_GL_LOADER_HEADER)
#  include UNIBUF_GL_LOADER_HEADER
#else
#  include <glad/gl.h>
#endif

#if !defined(GL_MAP_PERSISTENT_BIT) || !defined(GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT) || !defined(GL_COMPUTE_SHADER)
#  error "unibuf: the GL loader header declares less than GL 4.4 (GL_MAP_PERSISTENT_BIT, GL_CLIENT_MAPPED_BUFFER_BARRIER_BIT, GL_COMPUTE_SHADER); generate it for GL 4.4 or newer (see unibuf/backend/gl/loader.hpp)"
#endif
