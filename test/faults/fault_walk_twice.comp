// y[i] = 2 * x[i] for every element of y (the fault walk's device work). Binding 0: x (read),
// binding 1: y (write). No parameters: the length is y's bound range. The OpenGL walk builds the
// same source from the string in fault_walk_gl_test.cpp.
#version 450
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) writeonly buffer YBuf { float y[]; };

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < uint(y.length())) {
        y[i] = 2.0 * x[i];
    }
}
