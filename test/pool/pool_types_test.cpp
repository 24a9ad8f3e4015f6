// Policies in any order, defaults filled in, name one pool type (issue 9): basic_buffer_pool,
// buffer_pool and locked_buffer_pool are aliases of one class per resolved policy set, and a
// pool's buffers are the buffers of those resolved policies; rings of such buffers are one type.
#include "counting_backend.hpp"

#include <unibuf/transfer/pool.hpp>
#include <unibuf/transfer/ring.hpp>
#include <unibuf/unibuf.hpp>

#include <gtest/gtest.h>

#include <type_traits>
#include <vector>

namespace {

using namespace unibuf;
using B = host_backend;
using A_rw = access::read_write;
using C_co = coherence::coherent;
using P_auto = placement::automatic;
using S_fen = sync::fenced;

// ---- pools --------------------------------------------------------------------------------

// No policy, some, all: the defaults (read_write, coherent, automatic, fenced) fill the gaps.
static_assert(std::is_same_v<buffer_pool<B>, basic_buffer_pool_of<B, pool_locking::unlocked, A_rw, C_co, P_auto, S_fen>>);
static_assert(std::is_same_v<buffer_pool<B>, buffer_pool<B, A_rw>>);
static_assert(std::is_same_v<buffer_pool<B>, buffer_pool<B, S_fen, P_auto, C_co, A_rw>>);
static_assert(std::is_same_v<buffer_pool<B, A_rw, S_fen>, buffer_pool<B, S_fen, A_rw>>);

// Every permutation of a full list is one type.
using upload_pool = buffer_pool<B, access::write_only, coherence::write_combined, placement::automatic, sync::fenced>;
static_assert(std::is_same_v<upload_pool, buffer_pool<B, sync::fenced, access::write_only, coherence::write_combined, placement::automatic>>);
static_assert(std::is_same_v<upload_pool, buffer_pool<B, placement::automatic, sync::fenced, coherence::write_combined, access::write_only>>);
static_assert(std::is_same_v<upload_pool, buffer_pool<B, coherence::write_combined, access::write_only>>);  // defaults
static_assert(std::is_same_v<upload_pool, basic_buffer_pool<B, pool_locking::unlocked, coherence::write_combined, access::write_only>>);

using device_pool = locked_buffer_pool<B, access::read_write, coherence::coherent, placement::device, sync::lazy>;
static_assert(std::is_same_v<device_pool, locked_buffer_pool<B, sync::lazy, placement::device>>);
static_assert(std::is_same_v<device_pool, basic_buffer_pool<B, pool_locking::mutex, placement::device, access::read_write, sync::lazy>>);
static_assert(std::is_same_v<device_pool, basic_buffer_pool_of<B, pool_locking::mutex, A_rw, C_co, placement::device, sync::lazy>>);

// Different resolved sets or lockings stay different types.
static_assert(!std::is_same_v<buffer_pool<B>, locked_buffer_pool<B>>);
static_assert(!std::is_same_v<buffer_pool<B>, buffer_pool<B, sync::lazy>>);
static_assert(!std::is_same_v<buffer_pool<B, placement::host>, buffer_pool<B, placement::device_mapped>>);

// The resolved policies are visible on the pool.
static_assert(std::is_same_v<device_pool::access_policy, A_rw>);
static_assert(std::is_same_v<device_pool::placement_policy, placement::device>);
static_assert(std::is_same_v<device_pool::sync_policy, sync::lazy>);
static_assert(device_pool::locking::thread_safe);

// A pool's buffers are the buffers of the resolved policies, whichever order the pool named them in.
static_assert(std::is_same_v<buffer_pool<B, sync::lazy, placement::device>::buffer<float>,
                             basic_buffer<float, B, A_rw, C_co, placement::device, sync::lazy>>);
static_assert(std::is_same_v<upload_pool::buffer<int>, buffer_pool<B, coherence::write_combined, access::write_only>::buffer<int>>);

// The backend and locking checks accept what they must.
static_assert(PoolLocking<pool_locking::unlocked> && PoolLocking<pool_locking::mutex>);
static_assert(!PoolLocking<access::read_write> && !PoolLocking<int>);
static_assert(std::is_same_v<buffer_pool<unibuf_test::counting_backend<B>, sync::lazy>::backend_type,
                             unibuf_test::counting_backend<B>>);

// ---- rings --------------------------------------------------------------------------------

// A ring takes its slot buffer type: rings of one buffer type are one ring type, and pools whose
// policies were permuted give one slot type.
static_assert(std::is_same_v<ring<buffer_pool<B, sync::lazy, placement::device>::buffer<float>, 3>,
                             ring<device_pool::buffer<float>, 3>>);
static_assert(std::is_same_v<ring<basic_buffer<int, B, A_rw, S_fen>, 2>::buffer_type, basic_buffer<int, B, A_rw, S_fen>>);
// Buffers name one type whatever the order of their policies (buffer.hpp), so rings of them do too.
static_assert(std::is_same_v<ring<basic_buffer<float, B, sync::fenced, access::write_only, coherence::write_combined,
                                               placement::automatic>, 3>,
                             ring<upload_buffer<float, B>, 3>>);
static_assert(std::is_same_v<ring<basic_buffer<float, B, sync::lazy, placement::device>, 2>, ring<device_buffer<float, B>, 2>>);
static_assert(std::is_same_v<ring<basic_buffer<float, B>, 2>, ring<basic_buffer<float, B, S_fen, P_auto, C_co, A_rw>, 2>>);
// A pool's buffers are the aliases' types: a pool-backed ring and an owning ring share a slot type.
static_assert(std::is_same_v<buffer_pool<B, sync::lazy>::buffer<int>, shared_buffer<int, B>>);
static_assert(std::is_same_v<buffer_pool<B, coherence::write_combined, access::write_only>::buffer<float>,
                             upload_buffer<float, B>>);
static_assert(std::is_same_v<ring<buffer_pool<B, placement::device, sync::lazy>::buffer<float>, 2>,
                             ring<device_buffer<float, B>, 2>>);

// A function written against one spelling takes a pool declared with another.
std::size_t live_of(buffer_pool<B, access::read_write, sync::lazy>& pool) { return pool.stats().live_buffers; }
float first_of(buffer_pool<B, access::read_write, sync::lazy>::buffer<float>& b) { return b.to_vector().front(); }

TEST(PoolTypes, APoolDeclaredInAnotherOrderPassesAsTheSameType) {
    host_backend dev;
    buffer_pool<B, sync::lazy, coherence::coherent, placement::automatic, access::read_write> pool(
        dev, pool_config::with_bytes(4096));
    auto b = pool.acquire<float>(16);
    b.fill(1.5f);
    EXPECT_EQ(live_of(pool), 1u);
    EXPECT_EQ(first_of(b), 1.5f);
    ring<decltype(pool)::buffer<float>, 2> r(dev, [&](std::size_t) { return pool.acquire<float>(4); });
    EXPECT_EQ(live_of(pool), 3u);
}

} // namespace
