// glad's function pointers and loaders for the conv2d benchmark (one translation unit per program).
#include <unibuf/backend/gl/glad_implementation.hpp>
