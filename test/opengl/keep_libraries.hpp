// Keeps the GL driver's libraries loaded until the process ends, for LeakSanitizer.
//
// LeakSanitizer scans the globals of the libraries still loaded at exit. glvnd unloads the Mesa
// vendor library (and its DRI driver) before that check, so allocations the driver still holds
// through its globals show up as leaks of an "<unknown module>". Pinning every loaded library
// (RTLD_NODELETE) keeps those globals scanned: no suppression is needed. Call it once a context
// exists (the driver is loaded then).
#pragma once

#if defined(__linux__)
#  include <dlfcn.h>
#  include <link.h>
#endif

#include <cstddef>

namespace unibuf_test {

inline void keep_driver_libraries_loaded() {
#if defined(__linux__)
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void*) -> int {
            if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0')
                (void)dlopen(info->dlpi_name, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
            return 0;
        },
        nullptr);
#endif
}

} // namespace unibuf_test
