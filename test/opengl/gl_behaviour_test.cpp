// The shared behaviour suite on the OpenGL backend: the default persistent-mapping path, the forced
// traditional path (glBufferSubData / glGetBufferSubData shadow copies) and the bind-to-target path
// (no direct state access), all on the same headless debug context.
#include "../common/behaviour_tests.hpp"
#include "gl_env.hpp"

INSTANTIATE_TYPED_TEST_SUITE_P(OpenGL, BufferBehaviour, ::testing::Types<unibuf_test::gl_env>);
INSTANTIATE_TYPED_TEST_SUITE_P(OpenGLTraditional, BufferBehaviour, ::testing::Types<unibuf_test::gl_traditional_env>);
INSTANTIATE_TYPED_TEST_SUITE_P(OpenGLNoDSA, BufferBehaviour, ::testing::Types<unibuf_test::gl_no_dsa_env>);
