// fwd.hpp declares what the layer headers define: both in one translation unit must agree
// (same template heads, class/struct, no default given twice).
#include <unibuf/fwd.hpp>
#include <unibuf/vulkan.hpp>
