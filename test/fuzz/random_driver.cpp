// The seeded random driver: the same properties as the libFuzzer targets (memory_fuzz.hpp) for
// compilers without libFuzzer (GCC: the ASan + UBSan build runs it). It starts from the seed files,
// mutates them (byte flips, inserts, deletes, line swaps and splices between seeds, digit runs,
// known keywords and flags) and feeds every mutant to both properties, for a number of runs or a
// time budget, whichever ends first. Deterministic for a given --seed.
//   unibuf_fuzz_random_driver [--seed S] [--runs N] [--seconds T] <seed file>...
#include "memory_fuzz.hpp"

#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& l : v) s += l + "\n";
    return s;
}

std::string mutate(std::string s, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
    static const char* words[] = {"heap", "type", "device", "source", "nonCoherentAtomSize", "DEVICE_LOCAL",
                                  "HOST_VISIBLE", "HOST_COHERENT", "HOST_CACHED", "LAZILY_ALLOCATED", "PROTECTED",
                                  "DEVICE_COHERENT_AMD", "DEVICE_UNCACHED_AMD", "MULTI_INSTANCE", "|", "-", "#",
                                  "18446744073709551615", "18446744073709551616", "4294967295", "4294967296", "0",
                                  "-1", "32", "16", " ", "\t", "\r", "\n"};
    auto pick = [&](std::size_t n) { return n == 0 ? std::size_t{0} : static_cast<std::size_t>(rng() % n); };
    const int steps = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < steps; ++k) {
        switch (rng() % 8) {
            case 0:  // flip a byte
                if (!s.empty()) s[pick(s.size())] = static_cast<char>(rng());
                break;
            case 1:  // insert a keyword
                s.insert(pick(s.size() + 1), words[pick(std::size(words))]);
                break;
            case 2: {  // delete a run
                if (s.empty()) break;
                const std::size_t at = pick(s.size());
                s.erase(at, 1 + pick(16));
                break;
            }
            case 3: {  // swap two lines
                auto v = lines_of(s);
                if (v.size() > 1) std::swap(v[pick(v.size())], v[pick(v.size())]);
                s = join(v);
                break;
            }
            case 4: {  // a line of another seed
                auto v = lines_of(s);
                const auto w = lines_of(seeds[pick(seeds.size())]);
                if (!w.empty()) v.insert(v.begin() + static_cast<std::ptrdiff_t>(pick(v.size() + 1)), w[pick(w.size())]);
                s = join(v);
                break;
            }
            case 5: {  // duplicate a line many times (more heaps/types than Vulkan allows)
                auto v = lines_of(s);
                if (v.empty()) break;
                const std::string l = v[pick(v.size())];
                for (std::size_t i = 0, n = pick(40); i < n; ++i) v.push_back(l);
                s = join(v);
                break;
            }
            case 6: {  // replace a digit run with a long one
                const std::size_t at = s.find_first_of("0123456789", pick(s.size() + 1));
                if (at == std::string::npos) break;
                s.insert(at, std::string(1 + pick(24), static_cast<char>('0' + pick(10))));
                break;
            }
            default:  // truncate
                s.resize(pick(s.size() + 1));
                break;
        }
    }
    return s;
}

} // namespace

int main(int argc, char** argv) {
    std::uint64_t seed = 1, runs = 200000;
    double seconds = 60;
    std::vector<std::string> seeds;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if ((a == "--seed" || a == "--runs" || a == "--seconds") && i + 1 < argc) {
            const std::string v = argv[++i];
            if (a == "--seed") seed = std::stoull(v);
            else if (a == "--runs") runs = std::stoull(v);
            else seconds = std::stod(v);
            continue;
        }
        std::ifstream f(a, std::ios::binary);
        if (!f) {
            std::cerr << "cannot read seed file " << a << "\n";
            return 2;
        }
        seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    if (seeds.empty()) {
        std::cerr << "usage: unibuf_fuzz_random_driver [--seed S] [--runs N] [--seconds T] <seed file>...\n";
        return 2;
    }
    // The seeds themselves first: every fixture must be accepted.
    for (const auto& s : seeds) {
        unibuf::fuzz::check_memory_table_text(s);
        (void)unibuf::vulkan::parse_memory_table(s);
    }
    std::mt19937_64 rng(seed);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::uint64_t n = 0, accepted = 0;
    for (; n < runs && std::chrono::steady_clock::now() < end; ++n) {
        const std::string s = mutate(seeds[static_cast<std::size_t>(rng() % seeds.size())], seeds, rng);
        unibuf::fuzz::check_memory_table_text(s);
        try {
            (void)unibuf::vulkan::parse_memory_table(s);
            ++accepted;
        } catch (const std::system_error&) {
        }
        std::string bytes(64 + rng() % 256, '\0');
        for (auto& c : bytes) c = static_cast<char>(rng());
        unibuf::fuzz::check_memory_selection(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::cout << "unibuf fuzz (seeded driver, seed " << seed << "): " << n << " tables (" << accepted
              << " accepted), " << n << " selections; no property broken\n";
    return n > 0 ? 0 : 1;
}
