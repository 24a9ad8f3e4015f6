// conv2d on tensor cores: the same convolution as conv2d.comp (NCHW fp32 tensors, zero padding, any
// stride and dilation, optional bias and ReLU), computed as an implicit GEMM with cooperative
// matrices (GL_NV_cooperative_matrix): inputs and weights rounded to fp16, products and sums in fp32.
// Vulkan only (OpenGL has no cooperative matrices here).
//
//   out[n][k][p] = act(bias[k] + sum_q A[p][q] * B[q][k]),  p = oy*OW + ox (the output pixels of image n),
//   q = (c*R + r)*S + s (Kdim = C*R*S), A[p][q] = in[n][c][oy*SH - PT + r*DH][ox*SW - PL + s*DW] (0 outside),
//   B[q][k] = w[k][c][r][s].
//
// Bindings: 0 input (read), 1 weights K*C*R*S (read), 2 bias K (read; unused when HAS_BIAS is 0),
// 3 output (write). No push constants: the description and the tiling are specialization constants.
//
// Tiling: a work group of WM*WN subgroups computes BM consecutive output pixels (a block of rows of
// one image) for BN output channels. Each round stages BK columns of A (the input patch gathered on
// the fly, im2col, rounded to fp16; column-major, so that the invocations of a subgroup, which take
// consecutive pixels, write consecutive halves) and the matching BK x BN weights (fp16) in shared
// memory; each subgroup then multiplies its (BM/WM) x (BN/WN) part with MM x MN x MK cooperative
// matrices into fp32 accumulators. The next round's input and weights are loaded into registers
// while the current round multiplies. BM divides NL: each invocation keeps one pixel. At the end each subgroup stores its accumulators, one tile at a time, through
// its own part of shared memory to the NCHW output, adding the bias and the ReLU in fp32.
// Every index past the tensors (pixels past OH*OW, channels past K, q past C*R*S, taps in the padding)
// reads 0 or is not written, so any shape works; BM, BN, BK are multiples of WM*MM, WN*MN, MK.
#version 450
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require

layout(constant_id = 0) const uint NL = 128u;   // invocations per group = WM*WN*subgroup size
layout(constant_id = 1) const uint BM = 64u;    // output pixels per group
layout(constant_id = 2) const uint BN = 32u;    // output channels per group
layout(constant_id = 3) const uint BK = 32u;    // Kdim columns per round
layout(constant_id = 4) const uint WM = 2u;     // subgroups along the pixels
layout(constant_id = 5) const uint WN = 2u;     // subgroups along the channels
layout(constant_id = 6) const uint MM = 16u;    // cooperative matrix shape M x N x K
layout(constant_id = 7) const uint MN = 16u;
layout(constant_id = 8) const uint MK = 16u;
layout(constant_id = 9) const uint GX = 1u;     // groups in x (pixel blocks are x + y*GX)
layout(constant_id = 10) const uint N = 1u;
layout(constant_id = 11) const uint C = 1u;
layout(constant_id = 12) const uint H = 1u;
layout(constant_id = 13) const uint W = 1u;
layout(constant_id = 14) const uint K = 1u;
layout(constant_id = 15) const uint R = 1u;
layout(constant_id = 16) const uint S = 1u;
layout(constant_id = 17) const uint SH = 1u;
layout(constant_id = 18) const uint SW = 1u;
layout(constant_id = 19) const uint PT = 0u;
layout(constant_id = 20) const uint PL = 0u;
layout(constant_id = 21) const uint DH = 1u;
layout(constant_id = 22) const uint DW = 1u;
layout(constant_id = 23) const uint OH = 1u;
layout(constant_id = 24) const uint OW = 1u;
layout(constant_id = 25) const uint HAS_BIAS = 0u;
layout(constant_id = 26) const uint RELU = 0u;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(std430, binding = 0) readonly buffer InBuf { float in_data[]; };
layout(std430, binding = 1) readonly buffer WBuf { float w_data[]; };
layout(std430, binding = 2) readonly buffer BBuf { float b_data[]; };
layout(std430, binding = 3) writeonly buffer OutBuf { float out_data[]; };

const uint SCOPE_SUBGROUP = 3u;                // SPIR-V Scope Subgroup (the gl_ScopeSubgroup of GL_KHR_memory_scope_semantics,
                                                // whose extension is not needed for it)
const uint RS = R * S;
const uint CRS = C * RS;
const uint OHW = OH * OW;
const uint BLOCKS = (OHW + BM - 1u) / BM;
const uint KBLOCKS = (K + BN - 1u) / BN;
const uint TM = BM / (WM * MM);                 // tiles per subgroup along the pixels
const uint TN = BN / (WN * MN);                 // and along the channels
const uint BMP = BM + 8u;                       // padded column pitch (halves) of the staged input
const uint BKP = BK + 8u;                       // padded column pitch (halves) of the staged weights
const uint SGP = MM + 4u;                       // padded column pitch (floats) of a subgroup's output staging
const uint KS = NL / BM;                        // invocations per pixel: each takes every KS-th product
const uint AE = (BK + KS - 1u) / KS;            // input values an invocation loads per round
const uint BE = (BN * BK + NL - 1u) / NL;       // weights an invocation loads per round

shared float16_t s_a[BK * BMP];                 // A: [q][pixel], column-major BM x BK
shared float16_t s_b[BN * BKP];                 // B: [channel][q], column-major BK x BN
shared float s_c[WM * WN * MN * SGP];           // per subgroup: one MM x MN tile of the output, column-major

void main() {
    const uint lid = gl_LocalInvocationID.x;
    const uint block = gl_WorkGroupID.y * GX + gl_WorkGroupID.x;
    if (block >= BLOCKS) return;                // the whole group: the grid's last row may be partial
    const uint n = gl_WorkGroupID.z / KBLOCKS;
    const uint k0 = (gl_WorkGroupID.z % KBLOCKS) * BN;
    const uint p0 = block * BM;
    const uint sg = gl_SubgroupID;
    const uint sm = sg % WM;
    const uint sn = sg / WM;

    // This invocation's pixel and its first product of each round.
    const uint m = lid % BM;
    const uint kk0 = lid / BM;
    const uint p = p0 + m;
    const bool p_in = p < OHW;
    const uint oy = p / OW;
    const uint ox = p - oy * OW;
    const int y0 = int(oy * SH) - int(PT);
    const int x0 = int(ox * SW) - int(PL);
    const uint in_image = n * C * H * W;

    float av[AE];
    float bv[BE];
    // Loads round q0's values into av and bv (0 outside the tensors).
    #define UNIBUF_LOAD_ROUND(q0)                                                                          \
        for (uint t = 0u; t < AE; ++t) {                                                                   \
            const uint q = (q0) + kk0 + t * KS;                                                            \
            float v = 0.0;                                                                                 \
            if (p_in && kk0 + t * KS < BK && q < CRS) {                                                    \
                const uint c = q / RS;                                                                     \
                const uint rs = q - c * RS;                                                                \
                const uint r = rs / S;                                                                     \
                const int y = y0 + int(r * DH);                                                            \
                const int x = x0 + int((rs - r * S) * DW);                                                 \
                if (y >= 0 && x >= 0 && uint(y) < H && uint(x) < W)                                        \
                    v = in_data[in_image + (c * H + uint(y)) * W + uint(x)];                               \
            }                                                                                              \
            av[t] = v;                                                                                     \
        }                                                                                                  \
        for (uint t = 0u; t < BE; ++t) {                                                                   \
            const uint i = lid + t * NL;                                                                   \
            const uint kk = i % BK;                                                                        \
            const uint j = i / BK;                                                                         \
            const uint q = (q0) + kk;                                                                      \
            float v = 0.0;                                                                                 \
            if (j < BN && q < CRS && k0 + j < K) v = w_data[(k0 + j) * CRS + q];                            \
            bv[t] = v;                                                                                     \
        }

    fcoopmatNV<32, SCOPE_SUBGROUP, MM, MN> acc[TM][TN];
    for (uint i = 0u; i < TM; ++i)
        for (uint j = 0u; j < TN; ++j) acc[i][j] = fcoopmatNV<32, SCOPE_SUBGROUP, MM, MN>(0.0);

    UNIBUF_LOAD_ROUND(0u)
    for (uint q0 = 0u; q0 < CRS; q0 += BK) {
        barrier();  // the previous round's reads of s_a and s_b are done
        for (uint t = 0u; t < AE; ++t)
            if (kk0 + t * KS < BK) s_a[(kk0 + t * KS) * BMP + m] = float16_t(av[t]);
        for (uint t = 0u; t < BE; ++t) {
            const uint i = lid + t * NL;
            if (i < BN * BK) s_b[(i / BK) * BKP + i % BK] = float16_t(bv[t]);
        }
        barrier();
        if (q0 + BK < CRS) {
            UNIBUF_LOAD_ROUND(q0 + BK)  // in flight while this round multiplies
        }

        for (uint kk = 0u; kk < BK; kk += MK) {
            fcoopmatNV<16, SCOPE_SUBGROUP, MK, MN> b[TN];
            for (uint j = 0u; j < TN; ++j)
                coopMatLoadNV(b[j], s_b, ((sn * TN + j) * MN) * BKP + kk, BKP, true);
            for (uint i = 0u; i < TM; ++i) {
                fcoopmatNV<16, SCOPE_SUBGROUP, MM, MK> a;
                coopMatLoadNV(a, s_a, kk * BMP + (sm * TM + i) * MM, BMP, true);
                for (uint j = 0u; j < TN; ++j) acc[i][j] = coopMatMulAddNV(a, b[j], acc[i][j]);
            }
        }
    }
    // Out: one tile at a time through this subgroup's staging (MM pixels x MN channels, column-major).
    const uint stage = sg * (MN * SGP);
    const uint lanes = gl_SubgroupSize;
    const uint lane = gl_SubgroupInvocationID;
    for (uint i = 0u; i < TM; ++i) {
        for (uint j = 0u; j < TN; ++j) {
            coopMatStoreNV(acc[i][j], s_c, stage, SGP, true);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            const uint pb = p0 + (sm * TM + i) * MM;
            const uint kb = k0 + (sn * TN + j) * MN;
            for (uint e = lane; e < MM * MN; e += lanes) {
                const uint col = e / MM;  // channel within the tile; consecutive lanes take consecutive pixels
                const uint row = e - col * MM;
                const uint op = pb + row;
                const uint k = kb + col;
                if (op < OHW && k < K) {
                    float v = s_c[stage + col * SGP + row];
                    if (HAS_BIAS != 0u) v += b_data[k];
                    if (RELU != 0u) v = max(v, 0.0);
                    out_data[(n * K + k) * OHW + op] = v;
                }
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();  // the staging is read before the next tile overwrites it
        }
    }
}
