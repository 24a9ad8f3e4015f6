// The shared behaviour suite on the host backend.
#include "../common/behaviour_tests.hpp"
#include "../common/host_env.hpp"

INSTANTIATE_TYPED_TEST_SUITE_P(Host, BufferBehaviour, ::testing::Types<unibuf_test::host_env>);
