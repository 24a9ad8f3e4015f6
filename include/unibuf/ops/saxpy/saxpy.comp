// y[i] = a * x[i] + y[i] for i < n. Binding 0: x (read), binding 1: y (read_write).
// Parameters: Vulkan push constants; OpenGL: a std140 uniform block at binding 0 (same bytes).
#version 450
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) buffer YBuf { float y[]; };

#ifdef VULKAN
layout(push_constant) uniform Params { float a; uint n; } p;
#else
layout(std140, binding = 0) uniform Params { float a; uint n; } p;
#endif

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < p.n) {
        y[i] = p.a * x[i] + y[i];
    }
}
