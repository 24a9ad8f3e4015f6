// glad's function pointers and loaders for the example (one translation unit per program).
#include <unibuf/backend/gl/glad_implementation.hpp>
