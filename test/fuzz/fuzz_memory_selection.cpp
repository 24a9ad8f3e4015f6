// libFuzzer entry point (clang -fsanitize=fuzzer): memory-type selection, property 2 of
// memory_fuzz.hpp. The seed corpus (the fixture tables) only gives it a start; the bytes are read
// as numbers.
#include "memory_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    unibuf::fuzz::check_memory_selection(data, size);
    return 0;
}
