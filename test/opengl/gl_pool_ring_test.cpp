// The pool and ring behaviour suite (test/pool/pool_ring_behaviour.hpp) on the OpenGL backend:
// persistent mapping and the forced traditional path.
#include "../pool/pool_ring_behaviour.hpp"
#include "gl_env.hpp"

namespace unibuf_test {
INSTANTIATE_TYPED_TEST_SUITE_P(OpenGL, PoolRingBehaviour, ::testing::Types<gl_env>);
INSTANTIATE_TYPED_TEST_SUITE_P(OpenGLTraditional, PoolRingBehaviour, ::testing::Types<gl_traditional_env>);
} // namespace unibuf_test
