// glad's function pointers and loaders: one translation unit per program that uses unibuf::opengl.
#include <unibuf/backend/gl/glad_implementation.hpp>
