// unibuf-info: prints the Vulkan device unibuf would use, its memory types and heaps, and for the
// common policy combinations the memory type chosen, zero-copy or staged, and why.
//
//   unibuf-info                      the device (as vulkan_context chooses it)
//   unibuf-info --validation         ... with VK_LAYER_KHRONOS_validation on
//   unibuf-info TABLE.txt            the decision on a recorded table (test/fixtures/vulkan-memory)
//   unibuf-info --sizes 4096,1048576 [TABLE.txt]   other buffer sizes (bytes)
#include <unibuf/backend/vulkan/context.hpp>
#include <unibuf/backend/vulkan/memory_selection.hpp>
#include <unibuf/ops/vulkan/conv2d.hpp>
#include <unibuf/policy/policy_set.hpp>
#include <unibuf/policy/policies.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace unibuf;

struct named_request {
    const char* name;
    memory_request (*make)(std::uint64_t);
};

template <class... P>
memory_request req(std::uint64_t n) {
    return memory_request_for<policy_set<P...>>(n);
}

// The aliases of buffer.hpp and the combinations whose memory differs most across devices.
const named_request common[] = {
    {"upload_buffer (write_only, write_combined, automatic, fenced)",
     req<access::write_only, coherence::write_combined, placement::automatic, sync::fenced>},
    {"readback_buffer (read_only, coherent, host, fenced)",
     req<access::read_only, coherence::coherent, placement::host, sync::fenced>},
    {"shared_buffer (read_write, coherent, automatic, lazy)",
     req<access::read_write, coherence::coherent, placement::automatic, sync::lazy>},
    {"device_buffer (read_write, coherent, device, lazy)",
     req<access::read_write, coherence::coherent, placement::device, sync::lazy>},
    {"write_only, write_combined, device_mapped, fenced",
     req<access::write_only, coherence::write_combined, placement::device_mapped, sync::fenced>},
    {"read_write, coherent, device_mapped, fenced",
     req<access::read_write, coherence::coherent, placement::device_mapped, sync::fenced>},
    {"read_write, explicit_flush, host, none",
     req<access::read_write, coherence::explicit_flush, placement::host, sync::none>},
    {"read_write, coherent, automatic, none", req<access::read_write, coherence::coherent, placement::automatic, sync::none>},
    {"read_only, coherent, automatic, fenced", req<access::read_only, coherence::coherent, placement::automatic, sync::fenced>},
};

void print_table(const vulkan::memory_table& t, const vulkan::heap_budget& b) {
    std::printf("memory (nonCoherentAtomSize %llu, %s):\n", static_cast<unsigned long long>(t.non_coherent_atom),
                t.unified() ? "unified: every heap is device-local" : "discrete: separate device and system heaps");
    for (std::size_t i = 0; i < t.heaps.size(); ++i)
        std::printf("  heap %zu  %12s  %-14s available %s\n", i, vulkan::detail::format_bytes(t.heaps[i].size).c_str(),
                    vulkan::describe_heap_flags(t.heaps[i].flags).c_str(),
                    vulkan::detail::format_bytes(b.of(t, i)).c_str());
    for (std::size_t i = 0; i < t.types.size(); ++i)
        std::printf("  type %zu  heap %u  %s\n", i, t.types[i].heap, vulkan::describe_memory_flags(t.types[i].flags).c_str());
    std::printf("  budget: %s\n", b.source.c_str());
}

void print_decisions(const vulkan::memory_table& t, const vulkan::heap_budget& b, const std::vector<std::uint64_t>& sizes) {
    const vulkan::selection_thresholds th;
    std::printf("\nthresholds: staging_min_bytes %s, mapped_window_share %.2f\n",
                vulkan::detail::format_bytes(th.staging_min_bytes).c_str(), th.mapped_window_share);
    for (const auto& c : common) {
        std::printf("\n%s\n", c.name);
        for (auto n : sizes) {
            const auto d = vulkan::select_memory(c.make(n), t, b, th);
            const std::string sz = vulkan::detail::format_bytes(n);
            if (!d) {
                std::printf("  %10s  FAILS: %s\n", sz.c_str(), d.message.c_str());
                continue;
            }
            if (d.staged)
                std::printf("  %10s  staged      device type %d, staging type %d\n", sz.c_str(), d.device_type, d.staging_type);
            else
                std::printf("  %10s  zero-copy   type %d (%s)\n", sz.c_str(), d.device_type,
                            std::string(to_string(d.report.chosen)).c_str());
            std::printf("              why: %s\n", d.report.reason.c_str());
            for (const auto& f : d.report.fallbacks) std::printf("              FALLBACK: %s\n", f.c_str());
        }
    }
}

std::vector<std::uint64_t> parse_sizes(const char* s) {
    std::vector<std::uint64_t> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(std::strtoull(item.c_str(), nullptr, 10));
    return out;
}

} // namespace

int main(int argc, char** argv) {
    bool validation = false;
    std::string table_file;
    std::vector<std::uint64_t> sizes = {4096, 1u << 20, 64u << 20, 512u << 20};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--validation") {
            validation = true;
        } else if (a == "--sizes" && i + 1 < argc) {
            sizes = parse_sizes(argv[++i]);
        } else if (a == "--help" || a == "-h") {
            std::printf("usage: unibuf-info [--validation] [--sizes B1,B2,...] [TABLE.txt]\n");
            return 0;
        } else {
            table_file = a;
        }
    }
    try {
        if (!table_file.empty()) {
            std::ifstream in(table_file);
            if (!in) {
                std::fprintf(stderr, "unibuf-info: cannot open %s\n", table_file.c_str());
                return 2;
            }
            std::stringstream ss;
            ss << in.rdbuf();
            const auto t = vulkan::parse_memory_table(ss.str());
            std::printf("table: %s\ndevice: %s\nsource: %s\n", table_file.c_str(), t.device.c_str(), t.source.c_str());
            const auto b = vulkan::heap_budget::from_heap_sizes(t);
            print_table(t, b);
            print_decisions(t, b, sizes);
            return 0;
        }
        vulkan_context_options o;
        o.validation = validation;
        vulkan_context ctx(o);
        const auto& c = ctx.capabilities();
        std::printf("device: %s (%s), Vulkan %u.%u.%u\n", c.device_name.c_str(), std::string(device_type_name(c.device_type)).c_str(),
                    VK_API_VERSION_MAJOR(c.api_version), VK_API_VERSION_MINOR(c.api_version), VK_API_VERSION_PATCH(c.api_version));
        std::printf("driver: %s %s (driverVersion 0x%08x), vendor 0x%04x device 0x%04x\n", c.driver_name.c_str(),
                    c.driver_info.c_str(), c.driver_version, c.vendor_id, c.device_id);
        std::printf("queue family %u; timeline semaphores %s; VK_EXT_memory_budget %s; validation %s\n", c.queue_family,
                    c.timeline_semaphore ? "yes" : "no (VkFence fallback)", c.memory_budget ? "yes" : "no",
                    ctx.validation_enabled() ? "on (sync validation)" : "off");
        std::printf("transfer queue: %s\n", c.transfer_queue_note.c_str());
        std::printf("limits: minStorageBufferOffsetAlignment %llu, maxStorageBufferRange %llu, maxMemoryAllocationSize %llu,"
                    " maxComputeWorkGroupCount %u x %u x %u\n",
                    static_cast<unsigned long long>(c.min_storage_offset_alignment),
                    static_cast<unsigned long long>(c.max_storage_buffer_range),
                    static_cast<unsigned long long>(c.max_allocation_size), c.max_group_count[0], c.max_group_count[1],
                    c.max_group_count[2]);
        {  // conv2d's precision decision (issue 12), printed like the memory decisions below
            const auto cm = conv2d_cooperative_matrix_support(ctx);
            conv2d_options asked;
            asked.precision = conv2d_precision::tensor_core_fp16;
            std::printf("conv2d precision: default %s; cooperative matrix: VK_KHR %s, VK_NV %s, VK_NV_2 %s\n",
                        conv2d_vulkan_precision(cm, {}).to_string().c_str(), cm.khr ? "yes" : "no", cm.nv ? "yes" : "no",
                        cm.nv2 ? "yes" : "no");
            std::printf("  tensor cores asked: %s\n", conv2d_vulkan_precision(cm, asked).to_string().c_str());
        }
        const auto b = ctx.budget({});
        print_table(c.memory, b);
        std::printf("\nas a fixture file:\n%s", vulkan::format_memory_table(c.memory).c_str());
        print_decisions(c.memory, b, sizes);
        // Validation and performance warnings and errors only: the loader's own notices (a layer
        // added through VK_INSTANCE_LAYERS) are not collected, so they fail nothing.
        int failed = 0;
        for (const auto& m : ctx.take_messages()) {
            std::fprintf(stderr, "validation: [%s] %s\n", m.id_name.c_str(), m.text.c_str());
            ++failed;
        }
        return failed == 0 ? 0 : 1;
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "unibuf-info: %s\n", e.what());
        return 1;
    }
}
