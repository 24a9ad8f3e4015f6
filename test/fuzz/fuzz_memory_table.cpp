// libFuzzer entry point (clang -fsanitize=fuzzer): the fixture-table parser, property 1 of
// memory_fuzz.hpp. Seed corpus: test/fixtures/vulkan-memory/*.txt.
#include "memory_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    unibuf::fuzz::check_memory_table_text(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
