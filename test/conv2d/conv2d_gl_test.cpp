// The conv2d behaviour suite on OpenGL (debug context; any GL_DEBUG_TYPE_ERROR fails).
#include "conv2d_behaviour.hpp"

#include "../opengl/gl_env.hpp"

INSTANTIATE_TYPED_TEST_SUITE_P(OpenGL, Conv2dBehaviour, ::testing::Types<unibuf_test::gl_env>);
