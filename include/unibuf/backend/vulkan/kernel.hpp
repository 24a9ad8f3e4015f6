/// @file kernel.hpp
/// @brief `vulkan_kernel`: a SPIR-V compute kernel of the Vulkan backend (shader module,
/// descriptor-set layout, pipeline layout, compute pipeline), destroyed through the backend's
/// timeline once no submitted work uses it.
///
/// Part of `vulkan_backend`: the constructor taking the backend is defined in
/// backend/vulkan/vulkan_backend.hpp; include that header (or unibuf/vulkan.hpp) to make kernels.
#pragma once

#include "../../core/error.hpp"
#include "context.hpp"
#include "timeline.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace unibuf {

class vulkan_backend;

/// @brief One specialization constant of a kernel: the value of `layout(constant_id = id)`, a
/// 32-bit scalar (`uint`, `int`, `float` bits or `bool` as 0/1).
struct vulkan_specialization {
    std::uint32_t id = 0;     ///< the constant_id
    std::uint32_t value = 0;  ///< its 32 bits
};

/// @brief A compute kernel: a SPIR-V module with `bindings` storage buffers in set 0 (bindings
/// 0..N-1, in the order of `dispatch`'s ranges) and `push_constant_bytes` of push constants.
///
/// Move-only; destroys its pipeline through the backend once no submitted work uses it.
/// The backend must outlive the kernel.
/// @code
/// unibuf::vulkan_kernel saxpy(backend, unibuf::kernels::saxpy_spv, 2, sizeof(params));
/// @endcode
class vulkan_kernel {
public:
    /// @brief Builds the shader module, descriptor-set layout, pipeline layout and compute pipeline.
    /// @param spirv SPIR-V words (e.g. `unibuf::kernels::saxpy_spv`)
    /// @param bindings number of storage-buffer bindings (set 0, bindings 0..bindings-1)
    /// @param push_constant_bytes size of the push-constant block (0: none); a multiple of 4
    /// @param entry entry point name
    /// @throws std::system_error errc::invalid_argument (empty SPIR-V, push size not a multiple of 4 or
    ///         above the device's maxPushConstantsSize), or the Vulkan error of a failed creation
    vulkan_kernel(vulkan_backend& backend, std::span<const std::uint32_t> spirv, std::uint32_t bindings,
                  std::uint32_t push_constant_bytes, const char* entry = "main");
    /// @brief As the constructor above, with the values of specialization constants (ids the
    /// module does not declare are ignored, as Vulkan specifies).
    /// @param constants the constants' ids and 32-bit values; each id at most once
    /// @throws std::system_error errc::invalid_argument (as above, or an id given twice), or the
    ///         Vulkan error of a failed creation
    template <std::same_as<vulkan_backend> Backend>
    vulkan_kernel(Backend& backend, std::span<const std::uint32_t> spirv, std::uint32_t bindings,
                  std::uint32_t push_constant_bytes, std::span<const vulkan_specialization> constants,
                  const char* entry = "main")
        : vulkan_kernel(backend.ctx_, backend.timeline_, spirv, bindings, push_constant_bytes, entry, constants) {}
    /// @brief Takes over `o`'s objects; `o` is empty afterwards.
    vulkan_kernel(vulkan_kernel&& o) noexcept
        : owner_(std::exchange(o.owner_, nullptr)), ctx_(o.ctx_), module_(std::exchange(o.module_, {})),
          set_layout_(std::exchange(o.set_layout_, {})), layout_(std::exchange(o.layout_, {})),
          pipeline_(std::exchange(o.pipeline_, {})), bindings_(o.bindings_), push_bytes_(o.push_bytes_) {}
    /// @brief Releases this kernel's objects (deferred), then takes over `o`'s.
    vulkan_kernel& operator=(vulkan_kernel&& o) noexcept {
        if (this != &o) {
            reset();
            owner_ = std::exchange(o.owner_, nullptr);
            ctx_ = o.ctx_;
            module_ = std::exchange(o.module_, {});
            set_layout_ = std::exchange(o.set_layout_, {});
            layout_ = std::exchange(o.layout_, {});
            pipeline_ = std::exchange(o.pipeline_, {});
            bindings_ = o.bindings_;
            push_bytes_ = o.push_bytes_;
        }
        return *this;
    }
    vulkan_kernel(const vulkan_kernel&) = delete;
    vulkan_kernel& operator=(const vulkan_kernel&) = delete;
    /// @brief Releases the Vulkan objects (deferred until submitted work using them completes).
    ~vulkan_kernel() { reset(); }

    /// @brief Releases the Vulkan objects (deferred until submitted work using them completes).
    void reset() noexcept {
        if (owner_ == nullptr) return;
        detail::vk_retired g;
        g.module = std::exchange(module_, {});
        g.set_layout = std::exchange(set_layout_, {});
        g.layout = std::exchange(layout_, {});
        g.pipeline = std::exchange(pipeline_, {});
        owner_->bury(g);
        owner_ = nullptr;
    }

    /// @brief The compute pipeline (null after a move or reset).
    [[nodiscard]] vk::Pipeline pipeline() const noexcept { return pipeline_; }
    /// @brief The pipeline layout (set 0 + the push-constant range).
    [[nodiscard]] vk::PipelineLayout pipeline_layout() const noexcept { return layout_; }
    /// @brief The layout of descriptor set 0 (`bindings()` storage buffers).
    [[nodiscard]] vk::DescriptorSetLayout set_layout() const noexcept { return set_layout_; }
    /// @brief Number of storage-buffer bindings a dispatch must bind.
    [[nodiscard]] std::uint32_t bindings() const noexcept { return bindings_; }
    /// @brief Size of the push-constant block a dispatch must push.
    [[nodiscard]] std::uint32_t push_constant_bytes() const noexcept { return push_bytes_; }

private:
    // What the public constructor delegates to: the device of `ctx`, retired through `owner`.
    vulkan_kernel(const vulkan_context& ctx, detail::vk_timeline& owner, std::span<const std::uint32_t> spirv,
                  std::uint32_t bindings, std::uint32_t push_constant_bytes, const char* entry,
                  std::span<const vulkan_specialization> constants = {})
        : owner_(&owner), ctx_(&ctx), bindings_(bindings), push_bytes_(push_constant_bytes) {
        check_arguments(spirv, push_constant_bytes);
        for (std::size_t i = 0; i < constants.size(); ++i)
            for (std::size_t j = i + 1; j < constants.size(); ++j)
                if (constants[i].id == constants[j].id)
                    throw_error(errc::invalid_argument, "unibuf: vulkan: kernel: specialization constant id " +
                                                            std::to_string(constants[i].id) + " is given twice");
        struct cleanup {  // frees what was made so far if a later step throws
            vulkan_kernel* k;
            bool done = false;
            ~cleanup() {
                if (!done) k->reset();
            }
        } guard{this};
        create_module(spirv);
        create_layouts();
        create_pipeline(entry, constants);
        guard.done = true;
    }

    [[nodiscard]] const vk::DispatchLoaderDynamic& d() const noexcept { return ctx_->dispatcher(); }
    [[nodiscard]] vk::Device dev() const noexcept { return ctx_->device(); }

    void check_arguments(std::span<const std::uint32_t> spirv, std::uint32_t push_constant_bytes) const {
        const auto& caps = ctx_->capabilities();
        if (spirv.empty() || spirv[0] != 0x07230203u)
            throw_error(errc::invalid_argument, "unibuf: vulkan: kernel: the code is not SPIR-V (" +
                                                    std::to_string(spirv.size()) + " words, no SPIR-V magic number)");
        if (push_constant_bytes % 4 != 0 || push_constant_bytes > caps.max_push_constants_size)
            throw_error(errc::invalid_argument, "unibuf: vulkan: kernel: " + std::to_string(push_constant_bytes) +
                                                    " bytes of push constants; need a multiple of 4 up to " +
                                                    std::to_string(caps.max_push_constants_size));
    }

    void create_module(std::span<const std::uint32_t> spirv) {
        vk::ShaderModuleCreateInfo smci;
        smci.codeSize = spirv.size_bytes();
        smci.pCode = spirv.data();
        detail::vk_check(dev().createShaderModule(&smci, nullptr, &module_, d()), "vkCreateShaderModule");
    }

    // Set 0 with `bindings_` storage buffers, and the pipeline layout of set 0 + the push constants.
    void create_layouts() {
        std::vector<vk::DescriptorSetLayoutBinding> lb(bindings_);
        for (std::uint32_t i = 0; i < bindings_; ++i) {
            lb[i].binding = i;
            lb[i].descriptorType = vk::DescriptorType::eStorageBuffer;
            lb[i].descriptorCount = 1;
            lb[i].stageFlags = vk::ShaderStageFlagBits::eCompute;
        }
        vk::DescriptorSetLayoutCreateInfo dlci;
        dlci.bindingCount = bindings_;
        dlci.pBindings = lb.data();
        detail::vk_check(dev().createDescriptorSetLayout(&dlci, nullptr, &set_layout_, d()),
                         "vkCreateDescriptorSetLayout");

        vk::PushConstantRange pcr;
        pcr.stageFlags = vk::ShaderStageFlagBits::eCompute;
        pcr.offset = 0;
        pcr.size = push_bytes_;
        vk::PipelineLayoutCreateInfo plci;
        plci.setLayoutCount = 1;
        plci.pSetLayouts = &set_layout_;
        plci.pushConstantRangeCount = push_bytes_ > 0 ? 1 : 0;
        plci.pPushConstantRanges = &pcr;
        detail::vk_check(dev().createPipelineLayout(&plci, nullptr, &layout_, d()), "vkCreatePipelineLayout");
    }

    void create_pipeline(const char* entry, std::span<const vulkan_specialization> constants) {
        std::vector<vk::SpecializationMapEntry> map;
        map.reserve(constants.size());
        for (std::size_t i = 0; i < constants.size(); ++i)
            map.emplace_back(constants[i].id, static_cast<std::uint32_t>(i * sizeof(vulkan_specialization) +
                                                                         offsetof(vulkan_specialization, value)),
                             sizeof(std::uint32_t));
        vk::SpecializationInfo si;
        si.mapEntryCount = static_cast<std::uint32_t>(map.size());
        si.pMapEntries = map.data();
        si.dataSize = constants.size_bytes();
        si.pData = constants.data();
        vk::ComputePipelineCreateInfo cpci;
        cpci.flags = vk::PipelineCreateFlagBits::eDispatchBase;  // large dispatches are split (vulkan_batch::dispatch)
        cpci.stage.stage = vk::ShaderStageFlagBits::eCompute;
        cpci.stage.module = module_;
        cpci.stage.pName = entry;
        cpci.stage.pSpecializationInfo = constants.empty() ? nullptr : &si;
        cpci.layout = layout_;
        detail::vk_check(dev().createComputePipelines(vk::PipelineCache{}, 1, &cpci, nullptr, &pipeline_, d()),
                         "vkCreateComputePipelines");
    }

    detail::vk_timeline* owner_ = nullptr;
    const vulkan_context* ctx_ = nullptr;
    vk::ShaderModule module_;
    vk::DescriptorSetLayout set_layout_;
    vk::PipelineLayout layout_;
    vk::Pipeline pipeline_;
    std::uint32_t bindings_ = 0;
    std::uint32_t push_bytes_ = 0;
};

} // namespace unibuf
