/// @file backend_label.hpp
/// @brief `backend_label(b)`: how an error names one backend object among several of the same
/// type (several Vulkan devices or contexts, several GL contexts): its name, its address and,
/// where the backend tells, its device ("vulkan backend 0x5583... (device 'llvmpipe (LLVM 15.0.6,
/// 256 bits)', VkDevice 0x5583...)").
#pragma once

#include <cstdio>
#include <string>

namespace unibuf::detail {

[[nodiscard]] inline std::string address_text(const void* p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", p);
    return buf;
}

/// @brief A label naming `b` in error messages (see the file comment).
template <class B>
[[nodiscard]] std::string backend_label(const B& b) {
    std::string s = std::string(b.name()) + " backend " + address_text(&b);
    if constexpr (requires { b.context().capabilities().device_name; typename decltype(b.context().device())::CType; }) {
        const auto device = b.context().device();
        using handle = typename decltype(b.context().device())::CType;
        s += " (device '" + b.context().capabilities().device_name + "', VkDevice " +
             address_text(reinterpret_cast<const void*>(static_cast<handle>(device))) + ")";
    } else if constexpr (requires { b.capabilities().renderer; }) {
        s += " (GL renderer '" + b.capabilities().renderer + "')";
    }
    return s;
}

} // namespace unibuf::detail
