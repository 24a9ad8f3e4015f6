/// @file egl_context.hpp
/// @brief `egl_context`: a headless OpenGL 4.5/4.6 core context through EGL, no display needed.
///
/// Platforms are tried in order (each attempt is recorded, and all of them are in the error):
/// 1. `EGL_EXT_platform_device`: one EGL display per GPU; works on NVIDIA without X or Wayland
///    (hardware devices first, Mesa's software device last);
/// 2. `EGL_MESA_platform_surfaceless`: Mesa without a window system (llvmpipe in CI);
/// 3. the default display (`eglGetDisplay(EGL_DEFAULT_DISPLAY)`, steered by `EGL_PLATFORM`).
/// The context is core profile, 4.6 asked first, then lower minor versions down to `options::min_*`;
/// it is made current on the constructing thread, without a surface where
/// `EGL_KHR_surfaceless_context` allows (a 1x1 pbuffer otherwise), and glad's GL pointers are loaded.
///
/// @code
/// unibuf::egl_context ctx({.debug = true});   // current on this thread
/// unibuf::gl_debug_log log;
/// unibuf::gl_backend gpu;                       // uses the current context
/// @endcode
///
/// Uses glad 2's EGL loader (`<glad/egl.h>`, built with `--loader`: libEGL is opened at run time).
/// glad's pointers are process-wide: create contexts before other threads call GL, or while they
/// do not. Contexts are current on one thread at a time: `release_current()` here, `make_current()`
/// there. Destroy a context on the thread where it is current (or after `release_current()`).
#pragma once

#if defined(UNIBUF_GL_LOADER_HEADER)
#  error "unibuf: egl_context.hpp loads GL through glad 2; with your own loader (UNIBUF_GL_LOADER_HEADER) create the context yourself"
#endif

#include "loader.hpp"

#include <glad/egl.h>

#include "../../core/error.hpp"

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unibuf {

namespace detail {
/// Serializes EGL setup: glad's EGL/GL pointers and extension flags are process-wide.
inline std::mutex& egl_setup_mutex() {
    static std::mutex m;
    return m;
}
/// eglTerminate ends every context of a display: count our users of each display.
inline std::map<EGLDisplay, int>& egl_display_users() {
    static std::map<EGLDisplay, int> users;
    return users;
}
inline std::string egl_error_name(EGLint e) {
    switch (e) {
        case EGL_SUCCESS: return "EGL_SUCCESS";
        case EGL_NOT_INITIALIZED: return "EGL_NOT_INITIALIZED";
        case EGL_BAD_ACCESS: return "EGL_BAD_ACCESS";
        case EGL_BAD_ALLOC: return "EGL_BAD_ALLOC";
        case EGL_BAD_ATTRIBUTE: return "EGL_BAD_ATTRIBUTE";
        case EGL_BAD_CONFIG: return "EGL_BAD_CONFIG";
        case EGL_BAD_CONTEXT: return "EGL_BAD_CONTEXT";
        case EGL_BAD_DISPLAY: return "EGL_BAD_DISPLAY";
        case EGL_BAD_MATCH: return "EGL_BAD_MATCH";
        case EGL_BAD_PARAMETER: return "EGL_BAD_PARAMETER";
        case EGL_BAD_SURFACE: return "EGL_BAD_SURFACE";
        default: {
            char buf[16];
            std::snprintf(buf, sizeof buf, "0x%04x", static_cast<unsigned>(e));
            return std::string("EGL error ") + buf;
        }
    }
}
} // namespace detail

/// @brief A headless EGL display plus an OpenGL core context (see the file comment). Move-only.
/// A moved-from (or `reset`) context is empty: `context()` and `display()` are null,
/// `release_current()` and `reset()` do nothing, `make_current()` throws `errc::invalid_argument`.
class egl_context {
public:
    /// @brief Which EGL platform provided the display.
    enum class platform : std::uint8_t {
        device,           ///< EGL_EXT_platform_device
        surfaceless,      ///< EGL_MESA_platform_surfaceless
        default_display,  ///< eglGetDisplay(EGL_DEFAULT_DISPLAY)
    };

    /// @brief What to create.
    struct options {
        int major = 4;       ///< version asked first
        int minor = 6;
        int min_major = 4;   ///< lowest version accepted
        int min_minor = 5;
        bool debug = false;  ///< a debug context (GL_CONTEXT_FLAG_DEBUG_BIT), for gl_debug_log
        bool prefer_hardware = true;  ///< device platform: Mesa's software device only when no other works
        std::vector<platform> platforms{platform::device, platform::surfaceless, platform::default_display};
    };

    /// @brief Printable name of a platform.
    [[nodiscard]] static constexpr std::string_view to_string(platform p) noexcept {
        switch (p) {
            case platform::device: return "EGL_EXT_platform_device";
            case platform::surfaceless: return "EGL_MESA_platform_surfaceless";
            case platform::default_display: return "EGL default display";
        }
        return "?";
    }

    /// @brief Creates the context with default options (GL 4.6, else 4.5; no debug).
    egl_context() : egl_context(options{}) {}

    /// @brief Creates the context, makes it current on this thread and loads GL.
    /// @throws std::system_error unsupported: no libEGL, or no platform gave a context; the message
    /// lists every attempt and its EGL error
    explicit egl_context(const options& opt) {
        std::lock_guard lk(detail::egl_setup_mutex());
        if (gladLoaderLoadEGL(EGL_NO_DISPLAY) == 0)
            throw_error(errc::unsupported, "unibuf: egl_context: libEGL.so.1 could not be loaded (install the EGL "
                                           "loader, e.g. libegl1, and a driver: Mesa or NVIDIA)");
        for (platform p : opt.platforms) {
            if (p == platform::device) {
                try_device(opt);
            } else if (p == platform::surfaceless) {
                if (GLAD_EGL_MESA_platform_surfaceless == 0 || GLAD_EGL_EXT_platform_base == 0) {
                    note(p, "the client extension is missing");
                } else {
                    try_display(opt, p, eglGetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr),
                                "");
                }
            } else {
                try_display(opt, p, eglGetDisplay(EGL_DEFAULT_DISPLAY), "");
            }
            if (context_ != EGL_NO_CONTEXT) return;
        }
        throw_error(errc::unsupported, "unibuf: egl_context: no headless OpenGL " + std::to_string(opt.min_major) + "." +
                                           std::to_string(opt.min_minor) + "+ core context could be created; tried: " +
                                           attempts_);
    }

    egl_context(egl_context&& o) noexcept
        : display_(std::exchange(o.display_, EGL_NO_DISPLAY)), context_(std::exchange(o.context_, EGL_NO_CONTEXT)),
          surface_(std::exchange(o.surface_, EGL_NO_SURFACE)), platform_(o.platform_), major_(o.major_),
          minor_(o.minor_), debug_(o.debug_), description_(std::move(o.description_)),
          attempts_(std::move(o.attempts_)) {}
    egl_context& operator=(egl_context&& o) noexcept {
        if (this != &o) {
            reset();
            display_ = std::exchange(o.display_, EGL_NO_DISPLAY);
            context_ = std::exchange(o.context_, EGL_NO_CONTEXT);
            surface_ = std::exchange(o.surface_, EGL_NO_SURFACE);
            platform_ = o.platform_;
            major_ = o.major_;
            minor_ = o.minor_;
            debug_ = o.debug_;
            description_ = std::move(o.description_);
            attempts_ = std::move(o.attempts_);
        }
        return *this;
    }
    egl_context(const egl_context&) = delete;
    egl_context& operator=(const egl_context&) = delete;
    /// @brief Releases the context if current here, destroys it and, when no other egl_context uses
    /// the display, terminates the display.
    ~egl_context() { reset(); }

    /// @brief Destroys the context (see the destructor).
    void reset() noexcept {
        if (context_ == EGL_NO_CONTEXT) return;
        std::lock_guard lk(detail::egl_setup_mutex());
        if (eglGetCurrentContext() == context_) {
            eglMakeCurrent(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
            eglReleaseThread();
        }
        if (surface_ != EGL_NO_SURFACE) eglDestroySurface(display_, surface_);
        eglDestroyContext(display_, context_);
        release_display(display_);
        context_ = EGL_NO_CONTEXT;
        surface_ = EGL_NO_SURFACE;
        display_ = EGL_NO_DISPLAY;
    }

    /// @brief Makes the context current on the calling thread (it must not be current elsewhere).
    /// @throws std::system_error unsupported when EGL refuses, invalid_argument for an empty
    /// (moved-from or reset) context
    void make_current() const {
        if (context_ == EGL_NO_CONTEXT)
            throw_error(errc::invalid_argument, "unibuf: egl_context: make_current of an empty (moved-from or reset) context");
        eglBindAPI(EGL_OPENGL_API);
        if (eglMakeCurrent(display_, surface_, surface_, context_) == EGL_FALSE)
            throw_error(errc::unsupported, "unibuf: egl_context: eglMakeCurrent failed: " +
                                               detail::egl_error_name(eglGetError()) +
                                               " (is the context current on another thread?)");
    }
    /// @brief Releases the context from the calling thread (nothing for an empty context).
    void release_current() const noexcept {
        if (context_ == EGL_NO_CONTEXT) return;
        eglMakeCurrent(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    }

    /// @brief The platform that gave the display.
    [[nodiscard]] platform used_platform() const noexcept { return platform_; }
    /// @brief GL version of the context.
    [[nodiscard]] int gl_major() const noexcept { return major_; }
    /// @brief GL minor version of the context.
    [[nodiscard]] int gl_minor() const noexcept { return minor_; }
    /// @brief True when the context has GL_CONTEXT_FLAG_DEBUG_BIT.
    [[nodiscard]] bool is_debug() const noexcept { return debug_; }
    /// @brief One line: platform, EGL vendor, GL version and renderer.
    [[nodiscard]] const std::string& description() const noexcept { return description_; }
    /// @brief What was tried before this context was made (platforms, devices, versions).
    [[nodiscard]] const std::string& attempts() const noexcept { return attempts_; }
    /// @brief The EGL display.
    [[nodiscard]] EGLDisplay display() const noexcept { return display_; }
    /// @brief The EGL context.
    [[nodiscard]] EGLContext context() const noexcept { return context_; }

private:
    void note(platform p, const std::string& what) {
        if (!attempts_.empty()) attempts_ += "; ";
        attempts_ += std::string(to_string(p)) + ": " + what;
    }

    static void release_display(EGLDisplay d) noexcept {
        auto& users = detail::egl_display_users();
        auto it = users.find(d);
        if (it == users.end()) return;
        if (--it->second == 0) {
            users.erase(it);
            eglTerminate(d);
        }
    }

    void try_device(const options& opt) {
        // EGL_EXT_device_base is enumeration + query in one (NVIDIA advertises it alone).
        const bool enumeration = GLAD_EGL_EXT_device_enumeration != 0 || GLAD_EGL_EXT_device_base != 0;
        if (GLAD_EGL_EXT_platform_device == 0 || GLAD_EGL_EXT_platform_base == 0 || !enumeration ||
            eglQueryDevicesEXT == nullptr) {
            std::string missing;
            if (GLAD_EGL_EXT_platform_base == 0) missing += " EGL_EXT_platform_base";
            if (GLAD_EGL_EXT_platform_device == 0) missing += " EGL_EXT_platform_device";
            if (!enumeration) missing += " EGL_EXT_device_enumeration (or EGL_EXT_device_base)";
            if (missing.empty()) missing = " eglQueryDevicesEXT";
            note(platform::device, "the client extension is missing:" + missing);
            return;
        }
        EGLint n = 0;
        if (eglQueryDevicesEXT(0, nullptr, &n) == EGL_FALSE || n <= 0) {
            note(platform::device, "no EGL device (" + detail::egl_error_name(eglGetError()) + ")");
            return;
        }
        std::vector<EGLDeviceEXT> devices(static_cast<std::size_t>(n));
        eglQueryDevicesEXT(n, devices.data(), &n);
        devices.resize(static_cast<std::size_t>(n));
        std::vector<std::pair<EGLDeviceEXT, std::string>> order;  // hardware first
        std::vector<std::pair<EGLDeviceEXT, std::string>> software;
        for (std::size_t i = 0; i < devices.size(); ++i) {
            const bool query = (GLAD_EGL_EXT_device_query != 0 || GLAD_EGL_EXT_device_base != 0) && eglQueryDeviceStringEXT != nullptr;
            const char* ext = query ? eglQueryDeviceStringEXT(devices[i], EGL_EXTENSIONS) : nullptr;
            const bool soft = ext != nullptr && std::string_view(ext).find("EGL_MESA_device_software") != std::string_view::npos;
            std::string label = "device " + std::to_string(i) + (soft ? " (software)" : "");
            (soft && opt.prefer_hardware ? software : order).emplace_back(devices[i], std::move(label));
        }
        order.insert(order.end(), software.begin(), software.end());
        for (const auto& [dev, label] : order) {
            try_display(opt, platform::device, eglGetPlatformDisplayEXT(EGL_PLATFORM_DEVICE_EXT, dev, nullptr),
                        label + ": ");
            if (context_ != EGL_NO_CONTEXT) return;
        }
    }

    /// One display on its way to a context: what each step of try_display found.
    struct attempt {
        attempt(platform pl, EGLDisplay d, const std::string& l) noexcept : p(pl), display(d), label(l) {}
        platform p;
        EGLDisplay display;
        const std::string& label;  ///< "device N: " or empty, for the notes
        EGLint egl_major = 0;
        EGLint egl_minor = 0;
        EGLConfig config = EGL_NO_CONFIG_KHR;
        EGLContext context = EGL_NO_CONTEXT;
        EGLSurface surface = EGL_NO_SURFACE;
        int gl_major = 0;
        int gl_minor = 0;
    };

    // A display, then a config, a core context, current with GL loaded: each step notes its own
    // failure and gives back what the earlier steps took.
    void try_display(const options& opt, platform p, EGLDisplay d, const std::string& label) {
        attempt a{p, d, label};
        if (!open_display(a) || !choose_config(a) || !create_context(opt, a) || !make_current_and_load(a)) return;
        adopt(a);
    }

    // Step 1: initialized (counted as ours), EGL extensions loaded, desktop OpenGL bound.
    bool open_display(attempt& a) {
        if (a.display == EGL_NO_DISPLAY) {
            note(a.p, a.label + "no display (" + detail::egl_error_name(eglGetError()) + ")");
            return false;
        }
        if (eglInitialize(a.display, &a.egl_major, &a.egl_minor) == EGL_FALSE) {
            note(a.p, a.label + "eglInitialize failed (" + detail::egl_error_name(eglGetError()) + ")");
            return false;
        }
        ++detail::egl_display_users()[a.display];
        gladLoaderLoadEGL(a.display);  // display extensions and the EGL 1.5 entry points
        if (eglBindAPI(EGL_OPENGL_API) == EGL_FALSE) {
            note(a.p, a.label + "no desktop OpenGL API (" + detail::egl_error_name(eglGetError()) + ")");
            release_display(a.display);
            return false;
        }
        return true;
    }

    // Step 2: a pbuffer config, unless the display takes a context without config and surface.
    bool choose_config(attempt& a) {
        if (GLAD_EGL_KHR_no_config_context != 0 && GLAD_EGL_KHR_surfaceless_context != 0) return true;
        const EGLint want[] = {EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_NONE};
        EGLint count = 0;
        if (eglChooseConfig(a.display, want, &a.config, 1, &count) == EGL_FALSE || count < 1) {
            note(a.p, a.label + "no OpenGL pbuffer config (" + detail::egl_error_name(eglGetError()) + ")");
            release_display(a.display);
            return false;
        }
        return true;
    }

    // Step 3: a core context of the highest version from opt.major.minor down to opt.min_*.
    bool create_context(const options& opt, attempt& a) {
        const bool egl15 = a.egl_major > 1 || (a.egl_major == 1 && a.egl_minor >= 5);
        std::string tried;
        for (int v = opt.major * 10 + opt.minor; v >= opt.min_major * 10 + opt.min_minor && a.context == EGL_NO_CONTEXT; --v) {
            if (v % 10 > 6) continue;
            std::vector<EGLint> attr{EGL_CONTEXT_MAJOR_VERSION, v / 10, EGL_CONTEXT_MINOR_VERSION, v % 10,
                                     EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT};
            if (opt.debug) {
                if (egl15) {
                    attr.insert(attr.end(), {EGL_CONTEXT_OPENGL_DEBUG, EGL_TRUE});
                } else {
                    attr.insert(attr.end(), {EGL_CONTEXT_FLAGS_KHR, EGL_CONTEXT_OPENGL_DEBUG_BIT_KHR});
                }
            }
            attr.push_back(EGL_NONE);
            a.context = eglCreateContext(a.display, a.config, EGL_NO_CONTEXT, attr.data());
            if (a.context == EGL_NO_CONTEXT) {
                tried += (tried.empty() ? "" : ", ") + std::to_string(v / 10) + "." + std::to_string(v % 10) + " " +
                         detail::egl_error_name(eglGetError());
            } else {
                a.gl_major = v / 10;
                a.gl_minor = v % 10;
            }
        }
        if (a.context == EGL_NO_CONTEXT) {
            note(a.p, a.label + "no core context (" + tried + ")");
            release_display(a.display);
            return false;
        }
        return true;
    }

    // Step 4: current on this thread (through a 1x1 pbuffer where surfaceless contexts are not
    // offered), with glad's GL pointers loaded.
    bool make_current_and_load(attempt& a) {
        if (GLAD_EGL_KHR_surfaceless_context == 0) {
            const EGLint size[] = {EGL_WIDTH, 1, EGL_HEIGHT, 1, EGL_NONE};
            a.surface = eglCreatePbufferSurface(a.display, a.config, size);
        }
        if (eglMakeCurrent(a.display, a.surface, a.surface, a.context) == EGL_FALSE) {
            note(a.p, a.label + "eglMakeCurrent failed (" + detail::egl_error_name(eglGetError()) + ")");
            give_back(a);
            return false;
        }
        if (gladLoadGL(eglGetProcAddress) == 0) {
            note(a.p, a.label + "glad could not load GL through eglGetProcAddress");
            eglMakeCurrent(a.display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
            give_back(a);
            return false;
        }
        return true;
    }

    // After a failed step 4: the surface, the context and our use of the display go.
    static void give_back(const attempt& a) noexcept {
        if (a.surface != EGL_NO_SURFACE) eglDestroySurface(a.display, a.surface);
        eglDestroyContext(a.display, a.context);
        release_display(a.display);
    }

    // Step 5: the attempt becomes this context; its description names what was made.
    void adopt(const attempt& a) {
        GLint flags = 0;
        glGetIntegerv(GL_CONTEXT_FLAGS, &flags);
        display_ = a.display;
        context_ = a.context;
        surface_ = a.surface;
        platform_ = a.p;
        major_ = a.gl_major;
        minor_ = a.gl_minor;
        debug_ = (flags & GL_CONTEXT_FLAG_DEBUG_BIT) != 0;
        const char* vendor = eglQueryString(a.display, EGL_VENDOR);
        const auto* renderer = reinterpret_cast<const char*>(glGetString(GL_RENDERER));
        const auto* version = reinterpret_cast<const char*>(glGetString(GL_VERSION));
        description_ = std::string(to_string(a.p)) + (a.label.empty() ? "" : " " + a.label.substr(0, a.label.size() - 2)) +
                       ", EGL " + std::to_string(a.egl_major) + "." + std::to_string(a.egl_minor) + " (" +
                       (vendor != nullptr ? vendor : "?") + "), GL " + (version != nullptr ? version : "?") + ", " +
                       (renderer != nullptr ? renderer : "?");
        note(a.p, a.label + "OpenGL " + std::to_string(a.gl_major) + "." + std::to_string(a.gl_minor) + " core context");
    }

    // Destruction order: the surface and context before the display (reset() does it explicitly).
    EGLDisplay display_ = EGL_NO_DISPLAY;
    EGLContext context_ = EGL_NO_CONTEXT;
    EGLSurface surface_ = EGL_NO_SURFACE;
    platform platform_ = platform::device;
    int major_ = 0;
    int minor_ = 0;
    bool debug_ = false;
    std::string description_;
    std::string attempts_;
};

} // namespace unibuf
