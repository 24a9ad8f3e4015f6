// What the examples that run on Vulkan share: a context with or without the validation layers,
// and the check that fails a run on any message they reported.
#pragma once

#include <unibuf/vulkan.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace unibuf_example {

/// A context with VK_LAYER_KHRONOS_validation and synchronization validation when `validate`.
inline unibuf::vulkan_context make_vulkan_context(bool validate) {
    unibuf::vulkan_context_options opt;
    opt.validation = validate;
    opt.sync_validation = validate;
    return unibuf::vulkan_context(opt);
}

/// Prints every validation message collected since the last call; throws when there was any.
inline void throw_on_vulkan_messages(unibuf::vulkan_backend& gpu) {
    const auto messages = gpu.context().take_messages();
    for (const auto& m : messages) std::printf("vulkan message: %s %s\n", m.id_name.c_str(), m.text.c_str());
    if (!messages.empty())
        throw std::runtime_error("the Vulkan validation layers reported " + std::to_string(messages.size()) + " messages");
}

} // namespace unibuf_example
