// conv2d: out[n][k][y][x] = act(bias[k] + sum_{c,r,s} in[n][c][y*SH - PT + r*DH][x*SW - PL + s*DW] * w[k][c][r][s])
// NCHW fp32 tensors (PyTorch's layout), zero padding, optional bias and ReLU.
// Bindings: 0 input (read), 1 weights K*C*R*S (read), 2 bias K (read; unused when HAS_BIAS is 0),
// 3 output (write). No push constants: the description and the tiling are constants of the program
// (Vulkan: specialization constants; OpenGL: #defines that unibuf inserts after the #version line).
//
// Tiling: a work group computes a tile of LY rows x (LX*PX) columns of output pixels for KB output
// channels of one image. Invocation (tx, ty) computes row ty, columns tx + p*LX (p < PX: adjacent
// invocations touch adjacent pixels, so global stores and shared loads are coalesced) for all KB
// channels, PX*KB sums in registers. Input channels are taken CB at a time: the input patch the tile
// needs and the weights of those channels are staged in shared memory (rows padded by one float;
// weights as vec4s of 4 output channels, KB being a multiple of 4), then each invocation accumulates. Tiles whose patch lies inside the image skip the bounds checks.
// When all input channels fit in one round (CB == C) the channel loop has a compile-time bound, and
// a round's first barrier is left out (nothing in shared memory has been read yet). The buffers are
// `restrict`: conv2d rejects an output that overlaps an input (the inputs are only read).
#version 450

#ifdef VULKAN
layout(constant_id = 0) const uint LX = 32u;
layout(constant_id = 1) const uint LY = 4u;
layout(constant_id = 2) const uint PX = 1u;
layout(constant_id = 3) const uint KB = 1u;
layout(constant_id = 4) const uint CB = 1u;
layout(constant_id = 5) const uint N = 1u;
layout(constant_id = 6) const uint C = 1u;
layout(constant_id = 7) const uint H = 1u;
layout(constant_id = 8) const uint W = 1u;
layout(constant_id = 9) const uint K = 1u;
layout(constant_id = 10) const uint R = 1u;
layout(constant_id = 11) const uint S = 1u;
layout(constant_id = 12) const uint SH = 1u;
layout(constant_id = 13) const uint SW = 1u;
layout(constant_id = 14) const uint PT = 0u;
layout(constant_id = 15) const uint PL = 0u;
layout(constant_id = 16) const uint DH = 1u;
layout(constant_id = 17) const uint DW = 1u;
layout(constant_id = 18) const uint OH = 1u;
layout(constant_id = 19) const uint OW = 1u;
layout(constant_id = 20) const uint HAS_BIAS = 0u;
layout(constant_id = 21) const uint RELU = 0u;
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
#else
layout(local_size_x = LX, local_size_y = LY, local_size_z = 1) in;
#endif

layout(std430, binding = 0) restrict readonly buffer InBuf { float in_data[]; };
layout(std430, binding = 1) restrict readonly buffer WBuf { float w_data[]; };
layout(std430, binding = 2) restrict readonly buffer BBuf { float b_data[]; };
layout(std430, binding = 3) restrict writeonly buffer OutBuf { float out_data[]; };

const uint NL = LX * LY;                        // invocations per group
const uint TW = LX * PX;                        // output tile width
const uint ITH = (LY - 1u) * SH + (R - 1u) * DH + 1u;  // input patch rows
const uint ITW = (TW - 1u) * SW + (S - 1u) * DW + 1u;  // input patch columns
const uint ITWP = ITW + 1u;                     // padded row pitch in shared memory
const uint PATCH = ITH * ITWP;
const uint RS = R * S;
const uint KBLOCKS = (K + KB - 1u) / KB;

const uint KQ = KB / 4u;                        // KB is a multiple of 4: weights are read 4 at a time
shared float s_in[CB * PATCH];
shared vec4 s_w[CB * RS * KQ];                  // [cb][r][s][kb]: the KB weights of a tap side by side

void main() {
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint lid = ty * LX + tx;
    const uint ox0 = gl_WorkGroupID.x * TW;
    const uint oy0 = gl_WorkGroupID.y * LY;
    const uint n = gl_WorkGroupID.z / KBLOCKS;
    const uint k0 = (gl_WorkGroupID.z % KBLOCKS) * KB;
    // The patch's first input row/column; negative values lie in the padding.
    const int iy0 = int(oy0 * SH) - int(PT);
    const int ix0 = int(ox0 * SW) - int(PL);
    const bool patch_inside = iy0 >= 0 && ix0 >= 0 && uint(iy0) + ITH <= H && uint(ix0) + ITW <= W;

    float acc[KB * PX];
    for (uint kb = 0u; kb < KB; ++kb) {
        float b0 = 0.0;
        if (HAS_BIAS != 0u && k0 + kb < K) b0 = b_data[k0 + kb];
        for (uint p = 0u; p < PX; ++p) acc[kb * PX + p] = b0;
    }

    for (uint c0 = 0u; c0 < C; c0 += CB) {
        if (c0 != 0u) barrier();  // the previous channels' reads of shared memory are done
        const uint in_base = (n * C + c0) * H * W;
        if (patch_inside && c0 + CB <= C) {
            for (uint i = lid; i < CB * ITH * ITW; i += NL) {
                const uint cb = i / (ITH * ITW);
                const uint rem = i - cb * (ITH * ITW);
                const uint row = rem / ITW;
                const uint col = rem - row * ITW;
                s_in[cb * PATCH + row * ITWP + col] =
                    in_data[in_base + (cb * H + uint(iy0) + row) * W + uint(ix0) + col];
            }
        } else {
            for (uint i = lid; i < CB * ITH * ITW; i += NL) {
                const uint cb = i / (ITH * ITW);
                const uint rem = i - cb * (ITH * ITW);
                const uint row = rem / ITW;
                const uint col = rem - row * ITW;
                const int y = iy0 + int(row);
                const int x = ix0 + int(col);
                float v = 0.0;
                if (c0 + cb < C && y >= 0 && x >= 0 && uint(y) < H && uint(x) < W)
                    v = in_data[in_base + (cb * H + uint(y)) * W + uint(x)];
                s_in[cb * PATCH + row * ITWP + col] = v;
            }
        }
        // Weight i of the round is tap crs = cb*RS + r*S + s of output channel k0 + kb, at
        // w[(k0 + kb)*C*RS + c0*RS + crs]; channel c0 + cb exists while crs < (C - c0)*RS.
        for (uint i = lid; i < CB * RS * KB; i += NL) {
            const uint kb = i % KB;
            const uint crs = i / KB;
            float v = 0.0;
            if (k0 + kb < K && crs < (C - c0) * RS) v = w_data[(k0 + kb) * (C * RS) + c0 * RS + crs];
            s_w[i >> 2u][i & 3u] = v;
        }
        barrier();

        // A run-time bound where the last round may hold fewer channels (the loop stays rolled, which
        // keeps the program small; the taps and the KB x PX sums inside are unrolled); a constant
        // when one round holds them all.
        const uint cb_end = C == CB ? CB : min(CB, C - c0);
        for (uint cb = 0u; cb < cb_end; ++cb) {
            for (uint r = 0u; r < R; ++r) {
                const uint row_base = cb * PATCH + (ty * SH + r * DH) * ITWP;
                for (uint s = 0u; s < S; ++s) {
                    float xv[PX];
                    for (uint p = 0u; p < PX; ++p) xv[p] = s_in[row_base + (tx + p * LX) * SW + s * DW];
                    const uint wb = ((cb * R + r) * S + s) * KQ;
                    for (uint q = 0u; q < KQ; ++q) {
                        const vec4 wv = s_w[wb + q];
                        for (uint p = 0u; p < PX; ++p) {
                            acc[(4u * q) * PX + p] = fma(xv[p], wv.x, acc[(4u * q) * PX + p]);
                            acc[(4u * q + 1u) * PX + p] = fma(xv[p], wv.y, acc[(4u * q + 1u) * PX + p]);
                            acc[(4u * q + 2u) * PX + p] = fma(xv[p], wv.z, acc[(4u * q + 2u) * PX + p]);
                            acc[(4u * q + 3u) * PX + p] = fma(xv[p], wv.w, acc[(4u * q + 3u) * PX + p]);
                        }
                    }
                }
            }
        }
    }

    const uint oy = oy0 + ty;
    if (oy >= OH) return;
    for (uint kb = 0u; kb < KB; ++kb) {
        const uint k = k0 + kb;
        if (k >= K) break;
        const uint out_row = ((n * K + k) * OH + oy) * OW;
        for (uint p = 0u; p < PX; ++p) {
            const uint ox = ox0 + tx + p * LX;
            float v = acc[kb * PX + p];
            if (RELU != 0u) v = max(v, 0.0);
            if (ox < OW) out_data[out_row + ox] = v;
        }
    }
}
