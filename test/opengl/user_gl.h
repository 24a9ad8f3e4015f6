// A user's own GL "loader" for gl_user_loader_test.cpp: the system's core-profile prototypes,
// resolved by linking glvnd's libOpenGL (no glad anywhere in that program).
#pragma once
#define GL_GLEXT_PROTOTYPES 1
#include <GL/glcorearb.h>
