// unibuf-example-batch-pool: memory for a batched workload, allocated once, up front.
//
// A structure batch (as in a protein-structure model) has several inputs (atoms, residues,
// structures) and one output (a feature matrix per structure). The pool is sized from that batch
// configuration for a few batches in flight; every batch then takes its buffers from the pool
// without calling the backend. Shown: can_fit, the capacity error with its numbers, the buffers as
// views into the pool's memory, the statistics, and the three thread-safety choices: one pool per
// thread, one locked pool shared by threads, one pool per device with batches handed out round-robin.
// Runs on the host backend (a CPU "device"), so it works on any machine.
#include <unibuf/unibuf.hpp>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

struct atom {
    float x, y, z;
    std::uint32_t element;  // 0..features-5: a histogram bin of the feature row
};
struct residue {
    std::uint32_t first_atom, atoms;
};
struct structure {
    std::uint32_t first_residue, residues;
};

// The batch configuration: the most of each input one batch holds, and the output's row width.
constexpr std::size_t max_atoms = 4096, max_residues = 512, max_structures = 8, features = 16;
constexpr std::size_t batches_in_flight = 3;

using pool_type = unibuf::buffer_pool<unibuf::host_backend, unibuf::access::read_write>;

unibuf::pool_config batch_config() {
    return unibuf::pool_config::for_batches(
        batches_in_flight, {unibuf::buffer_shape::of<atom>(max_atoms), unibuf::buffer_shape::of<residue>(max_residues),
                            unibuf::buffer_shape::of<structure>(max_structures),
                            unibuf::buffer_shape::of<float>(max_structures * features)});
}

// Per structure: atom count, centroid (x, y, z), then a histogram of the atoms' elements.
const unibuf::host_kernel featurize = [](const unibuf::host_invocation& in) {
    const auto atoms = in.as<atom>(0);
    const auto residues = in.as<residue>(1);
    const auto structures = in.as<structure>(2);
    const auto out = in.as<float>(3);
    for (std::size_t s = 0; s < structures.size(); ++s) {
        float* row = &out[s * features];
        for (std::size_t f = 0; f < features; ++f) row[f] = 0.0f;
        for (std::uint32_t r = 0; r < structures[s].residues; ++r) {
            const residue& res = residues[structures[s].first_residue + r];
            for (std::uint32_t a = 0; a < res.atoms; ++a) {
                const atom& at = atoms[res.first_atom + a];
                row[0] += 1.0f;
                row[1] += at.x, row[2] += at.y, row[3] += at.z;
                row[4 + at.element] += 1.0f;
            }
        }
        for (std::size_t c = 1; c < 4; ++c) row[c] /= row[0];
    }
};

// One batch of `structures` structures of `residues_each` residues of `atoms_each` atoms, taken
// from the pool, featurized on `dev`. Returns the atoms the features counted (checked: all of them).
float run_batch(pool_type& pool, unibuf::host_backend& dev, std::size_t structures, std::size_t residues_each,
                std::size_t atoms_each, bool verbose) {
    const std::size_t n_res = structures * residues_each, n_atoms = n_res * atoms_each;
    auto batch = pool.begin_batch();  // one region of the configured batch size; no backend call
    auto atoms = batch.acquire<atom>(n_atoms);
    auto residues = batch.acquire<residue>(n_res);
    auto structs = batch.acquire<structure>(structures);
    auto feats = batch.acquire<float>(structures * features);
    if (verbose) {
        std::printf("  views into the pool (byte offset in its memory, size):\n");
        std::printf("    atoms      @ %8llu  %6llu bytes\n", static_cast<unsigned long long>(atoms.byte_offset()),
                    static_cast<unsigned long long>(atoms.size_bytes()));
        std::printf("    residues   @ %8llu  %6llu bytes\n", static_cast<unsigned long long>(residues.byte_offset()),
                    static_cast<unsigned long long>(residues.size_bytes()));
        std::printf("    structures @ %8llu  %6llu bytes\n", static_cast<unsigned long long>(structs.byte_offset()),
                    static_cast<unsigned long long>(structs.size_bytes()));
        std::printf("    features   @ %8llu  %6llu bytes (left in the batch region: %llu)\n",
                    static_cast<unsigned long long>(feats.byte_offset()), static_cast<unsigned long long>(feats.size_bytes()),
                    static_cast<unsigned long long>(batch.bytes_left()));
    }
    {   // the host writes the inputs straight into the pool's memory; each scope flushes as it ends
        auto a = atoms.write_scope();
        for (std::size_t i = 0; i < n_atoms; ++i)
            a[i] = atom{static_cast<float>(i % 7), static_cast<float>(i % 5), static_cast<float>(i % 3),
                        static_cast<std::uint32_t>(i % (features - 4))};
        auto r = residues.write_scope();
        for (std::size_t i = 0; i < n_res; ++i)
            r[i] = residue{static_cast<std::uint32_t>(i * atoms_each), static_cast<std::uint32_t>(atoms_each)};
        auto s = structs.write_scope();
        for (std::size_t i = 0; i < structures; ++i)
            s[i] = structure{static_cast<std::uint32_t>(i * residues_each), static_cast<std::uint32_t>(residues_each)};
    }
    unibuf::dispatch(dev, featurize, {1}, {}, unibuf::bind(atoms, unibuf::usage::read),
                     unibuf::bind(residues, unibuf::usage::read), unibuf::bind(structs, unibuf::usage::read),
                     unibuf::bind(feats, unibuf::usage::write));
    const std::vector<float> f = feats.to_vector();  // waits for the kernel
    float counted = 0;
    for (std::size_t s = 0; s < structures; ++s) counted += f[s * features];
    if (counted != static_cast<float>(n_atoms))
        throw std::runtime_error("batch of " + std::to_string(n_atoms) + " atoms: the features counted " +
                                 std::to_string(counted));
    return counted;
}  // the buffers go back to the batch region, the region to the pool: no backend call

void print_stats(const char* title, const unibuf::pool_stats& s) {
    std::printf("%s: %zu block(s), %llu bytes; batches %llu (peak %llu of %llu bytes per region), peak in use %llu "
                "bytes, acquires %llu, allocations avoided %llu, backend allocations %llu\n",
                title, s.blocks, static_cast<unsigned long long>(s.capacity_bytes), static_cast<unsigned long long>(s.batches),
                static_cast<unsigned long long>(s.peak_batch_bytes), static_cast<unsigned long long>(s.batch_bytes),
                static_cast<unsigned long long>(s.peak_bytes_in_use), static_cast<unsigned long long>(s.acquires),
                static_cast<unsigned long long>(s.allocations_avoided), static_cast<unsigned long long>(s.backend_allocations));
}

} // namespace

int main() try {
    unibuf::host_backend dev;
    pool_type pool(dev, batch_config());  // the one backend allocation
    std::printf("pool for %zu batches of {%zu atoms, %zu residues, %zu structures, %zux%zu features}: %llu bytes, "
                "%llu per batch region (%s)\n",
                batches_in_flight, max_atoms, max_residues, max_structures, max_structures, features,
                static_cast<unsigned long long>(pool.stats().capacity_bytes),
                static_cast<unsigned long long>(pool.stats().batch_bytes), pool.report().reason.c_str());

    // Batches of different sizes, each within the configured maximum.
    const std::size_t shapes[][3] = {{8, 64, 8}, {4, 100, 10}, {8, 32, 16}, {2, 256, 8}};
    for (std::size_t b = 0; b < std::size(shapes); ++b) {
        const float atoms = run_batch(pool, dev, shapes[b][0], shapes[b][1], shapes[b][2], b == 0);
        std::printf("batch %zu: %zu structures x %zu residues x %zu atoms -> features read back, %g atoms counted\n", b,
                    shapes[b][0], shapes[b][1], shapes[b][2], double(atoms));
    }

    // can_fit asks before acquiring; a request too large is refused with its numbers.
    std::printf("can_fit<atom>(%zu): %s, can_fit<atom>(%zu): %s\n", max_atoms, pool.can_fit<atom>(max_atoms) ? "yes" : "no",
                100 * max_atoms, pool.can_fit<atom>(100 * max_atoms) ? "yes" : "no");
    try {
        auto too_big = pool.acquire<atom>(100 * max_atoms);
        std::printf("unexpected: %zu atoms fit\n", too_big.size());
        return 1;
    } catch (const std::system_error& e) {
        std::printf("capacity error (%s): %s\n", e.code() == unibuf::errc::capacity_exceeded ? "capacity_exceeded" : "other",
                    e.what());
    }
    print_stats("statistics", pool.stats());

    // Threads 1: one pool per thread (no lock; each thread's pool and buffers stay on it).
    {
        std::vector<std::thread> threads;
        std::vector<float> counted(2);
        for (std::size_t t = 0; t < 2; ++t)
            threads.emplace_back([&dev, &counted, t] {
                pool_type own(dev, batch_config());
                for (int b = 0; b < 3; ++b) counted[t] += run_batch(own, dev, 4, 16, 8, false);
            });
        for (auto& th : threads) th.join();
        std::printf("one pool per thread: 2 threads x 3 batches, %g + %g atoms counted\n", double(counted[0]), double(counted[1]));
    }
    // Threads 2: one locked pool shared by the threads (a mutex in acquire and release).
    {
        unibuf::locked_buffer_pool<unibuf::host_backend, unibuf::access::read_write> shared(dev, batch_config());
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < 2; ++t)
            threads.emplace_back([&shared, t] {
                for (int i = 0; i < 50; ++i) {
                    auto a = shared.acquire<atom>(256 + t);  // free-standing slices, any thread
                    a.fill(atom{1, 2, 3, 0});
                }
            });
        for (auto& th : threads) th.join();
        print_stats("locked pool shared by 2 threads", shared.stats());
    }
    // Threads 3: one pool per device, batches handed out round-robin; each device's thread uses only its pool.
    {
        constexpr std::size_t devices = 2, total_batches = 6;
        std::vector<unibuf::host_backend> gpus(devices);
        std::vector<float> counted(devices);
        std::vector<std::thread> threads;
        for (std::size_t d = 0; d < devices; ++d)
            threads.emplace_back([&gpus, &counted, d] {
                pool_type own(gpus[d], batch_config());
                for (std::size_t b = d; b < total_batches; b += devices) counted[d] += run_batch(own, gpus[d], 2, 8, 4, false);
                print_stats(("device " + std::to_string(d) + " pool").c_str(), own.stats());
            });
        for (auto& th : threads) th.join();
        std::printf("one pool per device: %zu batches round-robin over %zu devices, %g + %g atoms counted\n", total_batches,
                    devices, double(counted[0]), double(counted[1]));
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "unibuf-example-batch-pool: %s\n", e.what());
    return 1;
}
