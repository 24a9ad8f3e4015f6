// The shared pool/ring behaviour suite on the host backend.
#include "../common/host_env.hpp"
#include "pool_ring_behaviour.hpp"

namespace unibuf_test {
INSTANTIATE_TYPED_TEST_SUITE_P(Host, PoolRingBehaviour, ::testing::Types<host_env>);
} // namespace unibuf_test
