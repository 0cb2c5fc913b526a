// The packed recurrent products of the per-ISA kernels: out (rows, ncols) = h (rows, K) *
// P(:, c0 : c0 + ncols), where P is one unit block of the packed recurrent weights, (K, W) with
// row stride W (packing.hpp), in float or in bfloat16 (std::uint16_t, in the layout kBf16Layout
// names). Column chunk j (16 columns) of row r goes to out + r*ldo + j*ocs: ocs = 16 keeps the
// row contiguous, ocs = Hp scatters gates into a gate-major row.
//
// Each output's sum over k runs in an order fixed by the kernel's shape, never by how callers
// split the columns among threads, so results do not depend on the thread count.
//
// Included only by kernels/common.hpp, which is compiled once per ISA (RNNKIT_ISA_NS names it).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "rnnkit/buffer.hpp"
#include "rnnkit/packing.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define RNNKIT_PACKED_KERNELS 1
#else
#define RNNKIT_PACKED_KERNELS 0
#endif

#ifndef RNNKIT_AMX
#define RNNKIT_AMX 0  // the amx build (defined by CMake): AMX tiles for the bfloat16 products
#endif
#if RNNKIT_AMX
#include "kernels/amx_tiles.hpp"
#endif

namespace rnnkit {
namespace RNNKIT_ISA_NS {

// ---- generic kernels (any element type, any build) ------------------------------------------
// The double products and every product of the baseline build, written with GCC/Clang vector
// types that the compiler maps onto the build's registers (SSE2, AVX2 or AVX-512). Same layouts
// and the same summation order as the SIMD kernels: each output is a sum over k in order
// 0..K-1 (in slices of k that accumulate in place), whatever the number of rows.
#if defined(__AVX512F__)
constexpr int kGenericRegs = 32, kGenericRegBytes = 64;
#elif defined(__AVX__)
constexpr int kGenericRegs = 16, kGenericRegBytes = 32;
#else
constexpr int kGenericRegs = 16, kGenericRegBytes = 16;
#endif

// One register of T: 16, 32 or 64 bytes as the build has.
typedef float GenericF32 __attribute__((vector_size(kGenericRegBytes)));
typedef double GenericF64 __attribute__((vector_size(kGenericRegBytes)));
template <class T>
struct GenericVec;
template <>
struct GenericVec<float> {
  using V = GenericF32;
};
template <>
struct GenericVec<double> {
  using V = GenericF64;
};
template <class V, class T>
inline V generic_load(const T* p) {  // unaligned
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V, class T>
inline void generic_store(T* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// Rows per micro kernel: as many as keep the accumulators, one chunk of weights and a broadcast
// in registers.
template <class T>
constexpr int generic_rows() {
  constexpr int per_row = kUnitBlock * int(sizeof(T)) / kGenericRegBytes;
  constexpr int r = (kGenericRegs - per_row - 2) / per_row;
  return r < 1 ? 1 : r > 8 ? 8 : r;
}

// R rows x the 16 columns of P (K, W) at P: out (row stride ldo) = [out +] h * P.
// accumulate: start from out (a later k-slice); add_out: out += the sum once it is complete.
template <int R, class T>
inline void generic_micro(const T* h, int ldh, const T* P, int W, int K, T* out, int ldo,
                          bool accumulate, bool add_out) {
  using V = typename GenericVec<T>::V;
  constexpr int L = int(sizeof(V) / sizeof(T)), NV = kUnitBlock / L;
  V acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v)
      acc[r][v] = accumulate ? generic_load<V>(out + std::size_t(r) * ldo + v * L) : V{};
  for (int k = 0; k < K; ++k) {
    const T* q = P + std::size_t(k) * W;
    V w[NV];
    for (int v = 0; v < NV; ++v) w[v] = generic_load<V>(q + v * L);
    for (int r = 0; r < R; ++r) {
      const T x = h[std::size_t(r) * ldh + k];
      for (int v = 0; v < NV; ++v) acc[r][v] += w[v] * x;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      T* o = out + std::size_t(r) * ldo + v * L;
      generic_store(o, add_out ? generic_load<V>(o) + acc[r][v] : acc[r][v]);
    }
}

// out = h (rows, K) * P(:, c0 : c0 + ncols), ncols a multiple of 16; column chunk j of row r
// at out + r*ldo + j*ocs (as the SIMD kernels below). add: out += the product.
template <class T>
inline void packed_product_generic(const T* h, int rows, int ldh, const T* P, int W, int c0,
                                   int ncols, int K, T* out, int ldo, int ocs = 16, bool add = false) {
  constexpr int R = generic_rows<T>();
  const int kc = add ? K : 128;  // a slice of one chunk's weights (16 KB in double) stays in L1
  for (int c = 0; c < ncols; c += kUnitBlock) {
    T* o = out + (c / kUnitBlock) * ocs;
    const T* Pc = P + c0 + c;
    for (int k0 = 0; k0 < K; k0 += kc) {
      const int kn = std::min(kc, K - k0);
      const T* Pk = Pc + std::size_t(k0) * W;
      int r = 0;
      for (; r + R <= rows; r += R)
        generic_micro<R>(h + std::size_t(r) * ldh + k0, ldh, Pk, W, kn, o + std::size_t(r) * ldo, ldo,
                         k0 > 0, add);
      for (; r < rows; ++r)
        generic_micro<1>(h + std::size_t(r) * ldh + k0, ldh, Pk, W, kn, o + std::size_t(r) * ldo, ldo,
                         k0 > 0, add);
    }
  }
}

// bfloat16 weights in the generic build (the baseline kernels never receive packs: this only
// keeps the shared call sites compiling): plain loops.
inline void packed_product_generic(const float* h, int rows, int ldh, const std::uint16_t* P, int W,
                                   int c0, int ncols, int K, float* out, int ldo, int ocs = 16,
                                   bool add = false) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < ncols; ++c) {
      float acc = 0;
      for (int k = 0; k < K; ++k)
        acc += h[std::size_t(r) * ldh + k] * from_bf16(P[bf16_index(std::size_t(k) * W + c0 + c)]);
      float& o = out[std::size_t(r) * ldo + (c / 16) * ocs + c % 16];
      o = add ? o + acc : acc;
    }
}

#if RNNKIT_PACKED_KERNELS
// ---- 256-bit kernels (AVX2+FMA) --------------------------------------------------------------
// A bfloat16 chunk of 16 columns is widened to the same two float vectors as the float chunk,
// so the two give bitwise equal results for weights that bfloat16 represents exactly.

// The two vectors of 8 columns of the 16-column chunk at q.
inline void load_chunk(const float* q, __m256& lo, __m256& hi) {
  lo = _mm256_loadu_ps(q);
  hi = _mm256_loadu_ps(q + 8);
}
inline void load_chunk(const std::uint16_t* q, __m256& lo, __m256& hi) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  lo = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
  hi = _mm256_castsi256_ps(_mm256_and_si256(raw, _mm256_set1_epi32(int(0xffff0000u))));
}

// R rows x NV vectors of 8 columns, accumulators in registers. With one row the weights are
// FMA memory operands (8 accumulators hide the FMA latency); with several, each weight vector
// is loaded once and reused for every row. Column chunk j (16 columns) of a row is stored at
// out + j*ocs: ocs = 16 keeps the row contiguous, ocs = Hp scatters gates into a gate-major row.
// add_out: out += the sum, added after it is complete (a second k-segment's way in).
template <int R, int NV, class Wt>
inline void packed_micro(const float* h, int ldh, const Wt* P, int W, int K, float* out, int ldo,
                         int ocs, bool accumulate, bool add_out = false) {
  static_assert(NV % 2 == 0, "whole 16-column chunks");
  __m256 c[R][NV];
  auto dst = [&](int r, int v) { return out + std::size_t(r) * ldo + (v / 2) * ocs + (v % 2) * 8; };
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = accumulate ? _mm256_loadu_ps(dst(r, v)) : _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const Wt* q = P + std::size_t(k) * W;
    __m256 u[NV];
    for (int v = 0; v < NV; v += 2) load_chunk(q + v * 8, u[v], u[v + 1]);
    for (int r = 0; r < R; ++r) {
      const __m256 hb = _mm256_broadcast_ss(h + r * ldh + k);
      for (int v = 0; v < NV; ++v) c[r][v] = _mm256_fmadd_ps(u[v], hb, c[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v)
      _mm256_storeu_ps(dst(r, v), add_out ? _mm256_add_ps(_mm256_loadu_ps(dst(r, v)), c[r][v]) : c[r][v]);
}

// Three rows x 32 columns with twelve named accumulators: per k, two chunk loads and three
// broadcasts feed twelve FMAs (the generic template above spills at this size).
template <class Wt>
inline void packed_micro_3x32(const float* h, int ldh, const Wt* P, int W, int K, float* out,
                              int ldo, int ocs, bool accumulate) {
  const float* h0 = h;
  const float* h1 = h + ldh;
  const float* h2 = h + 2 * ldh;
  float* o0 = out;
  float* o1 = out + ldo;
  float* o2 = out + 2 * ldo;
  // vector v of a row lives at o + (v / 2) * ocs + (v % 2) * 8
  const int s1 = 8, s2 = ocs, s3 = ocs + 8;
  __m256 a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3;
  if (accumulate) {
    a0 = _mm256_loadu_ps(o0); a1 = _mm256_loadu_ps(o0 + s1); a2 = _mm256_loadu_ps(o0 + s2); a3 = _mm256_loadu_ps(o0 + s3);
    b0 = _mm256_loadu_ps(o1); b1 = _mm256_loadu_ps(o1 + s1); b2 = _mm256_loadu_ps(o1 + s2); b3 = _mm256_loadu_ps(o1 + s3);
    c0 = _mm256_loadu_ps(o2); c1 = _mm256_loadu_ps(o2 + s1); c2 = _mm256_loadu_ps(o2 + s2); c3 = _mm256_loadu_ps(o2 + s3);
  } else {
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = c0 = c1 = c2 = c3 = _mm256_setzero_ps();
  }
  const Wt* q = P;
  for (int k = 0; k < K; ++k, q += W) {
    __m256 u0, u1, u2, u3;
    load_chunk(q, u0, u1);
    load_chunk(q + 16, u2, u3);
    __m256 x = _mm256_broadcast_ss(h0 + k);
    a0 = _mm256_fmadd_ps(u0, x, a0); a1 = _mm256_fmadd_ps(u1, x, a1);
    a2 = _mm256_fmadd_ps(u2, x, a2); a3 = _mm256_fmadd_ps(u3, x, a3);
    x = _mm256_broadcast_ss(h1 + k);
    b0 = _mm256_fmadd_ps(u0, x, b0); b1 = _mm256_fmadd_ps(u1, x, b1);
    b2 = _mm256_fmadd_ps(u2, x, b2); b3 = _mm256_fmadd_ps(u3, x, b3);
    x = _mm256_broadcast_ss(h2 + k);
    c0 = _mm256_fmadd_ps(u0, x, c0); c1 = _mm256_fmadd_ps(u1, x, c1);
    c2 = _mm256_fmadd_ps(u2, x, c2); c3 = _mm256_fmadd_ps(u3, x, c3);
  }
  _mm256_storeu_ps(o0, a0); _mm256_storeu_ps(o0 + s1, a1); _mm256_storeu_ps(o0 + s2, a2); _mm256_storeu_ps(o0 + s3, a3);
  _mm256_storeu_ps(o1, b0); _mm256_storeu_ps(o1 + s1, b1); _mm256_storeu_ps(o1 + s2, b2); _mm256_storeu_ps(o1 + s3, b3);
  _mm256_storeu_ps(o2, c0); _mm256_storeu_ps(o2 + s1, c1); _mm256_storeu_ps(o2 + s2, c2); _mm256_storeu_ps(o2 + s3, c3);
}

// Six rows x 16 columns (one column chunk): one chunk load and six broadcasts per k.
template <class Wt>
inline void packed_micro_6x16(const float* h, int ldh, const Wt* P, int W, int K, float* out,
                              int ldo, bool accumulate) {
  __m256 r0a, r0b, r1a, r1b, r2a, r2b, r3a, r3b, r4a, r4b, r5a, r5b;
  if (accumulate) {
    r0a = _mm256_loadu_ps(out); r0b = _mm256_loadu_ps(out + 8);
    r1a = _mm256_loadu_ps(out + ldo); r1b = _mm256_loadu_ps(out + ldo + 8);
    r2a = _mm256_loadu_ps(out + 2 * ldo); r2b = _mm256_loadu_ps(out + 2 * ldo + 8);
    r3a = _mm256_loadu_ps(out + 3 * ldo); r3b = _mm256_loadu_ps(out + 3 * ldo + 8);
    r4a = _mm256_loadu_ps(out + 4 * ldo); r4b = _mm256_loadu_ps(out + 4 * ldo + 8);
    r5a = _mm256_loadu_ps(out + 5 * ldo); r5b = _mm256_loadu_ps(out + 5 * ldo + 8);
  } else {
    r0a = r0b = r1a = r1b = r2a = r2b = r3a = r3b = r4a = r4b = r5a = r5b = _mm256_setzero_ps();
  }
  const Wt* q = P;
  for (int k = 0; k < K; ++k, q += W) {
    __m256 u0, u1;
    load_chunk(q, u0, u1);
    __m256 x = _mm256_broadcast_ss(h + k);
    r0a = _mm256_fmadd_ps(u0, x, r0a); r0b = _mm256_fmadd_ps(u1, x, r0b);
    x = _mm256_broadcast_ss(h + ldh + k);
    r1a = _mm256_fmadd_ps(u0, x, r1a); r1b = _mm256_fmadd_ps(u1, x, r1b);
    x = _mm256_broadcast_ss(h + 2 * ldh + k);
    r2a = _mm256_fmadd_ps(u0, x, r2a); r2b = _mm256_fmadd_ps(u1, x, r2b);
    x = _mm256_broadcast_ss(h + 3 * ldh + k);
    r3a = _mm256_fmadd_ps(u0, x, r3a); r3b = _mm256_fmadd_ps(u1, x, r3b);
    x = _mm256_broadcast_ss(h + 4 * ldh + k);
    r4a = _mm256_fmadd_ps(u0, x, r4a); r4b = _mm256_fmadd_ps(u1, x, r4b);
    x = _mm256_broadcast_ss(h + 5 * ldh + k);
    r5a = _mm256_fmadd_ps(u0, x, r5a); r5b = _mm256_fmadd_ps(u1, x, r5b);
  }
  _mm256_storeu_ps(out, r0a); _mm256_storeu_ps(out + 8, r0b);
  _mm256_storeu_ps(out + ldo, r1a); _mm256_storeu_ps(out + ldo + 8, r1b);
  _mm256_storeu_ps(out + 2 * ldo, r2a); _mm256_storeu_ps(out + 2 * ldo + 8, r2b);
  _mm256_storeu_ps(out + 3 * ldo, r3a); _mm256_storeu_ps(out + 3 * ldo + 8, r3b);
  _mm256_storeu_ps(out + 4 * ldo, r4a); _mm256_storeu_ps(out + 4 * ldo + 8, r4b);
  _mm256_storeu_ps(out + 5 * ldo, r5a); _mm256_storeu_ps(out + 5 * ldo + 8, r5b);
}

// out = h (rows, K) * P(:, c0 : c0 + ncols), ncols a multiple of 16, with 256-bit vectors.
template <class Wt>
inline void packed_product_avx2(const float* h, int rows, int ldh, const Wt* P, int W, int c0,
                                int ncols, int K, float* out, int ldo, int ocs = 16, bool add = false) {
  constexpr int kc = 128;  // a 32-column slice of kc rows of P (16 KB) stays in L1
  const int full = rows >= 3 ? rows - rows % 3 : 0;  // rows handled three at a time
  const int wide = ncols - ncols % 32;               // columns handled 32 at a time
  for (int c = 0; c < wide; c += 32)
    for (int k0 = 0; k0 < K; k0 += kc)
      for (int rr = 0; rr < full; rr += 3)
        packed_micro_3x32(h + std::size_t(rr) * ldh + k0, ldh, P + std::size_t(k0) * W + c0 + c, W,
                          std::min(kc, K - k0), out + std::size_t(rr) * ldo + (c / 16) * ocs, ldo, ocs,
                          k0 > 0);
  if (wide < ncols) {  // a last 16 columns: six rows at a time, then one by one
    const int six = full - full % 6;
    for (int k0 = 0; k0 < K; k0 += 2 * kc)
      for (int rr = 0; rr < six; rr += 6)
        packed_micro_6x16(h + std::size_t(rr) * ldh + k0, ldh, P + std::size_t(k0) * W + c0 + wide, W,
                          std::min(2 * kc, K - k0), out + std::size_t(rr) * ldo + (wide / 16) * ocs, ldo,
                          k0 > 0);
    for (int rr = six; rr < full; ++rr)
      packed_micro<1, 2>(h + std::size_t(rr) * ldh, 0, P + c0 + wide, W, K,
                         out + std::size_t(rr) * ldo + (wide / 16) * ocs, 0, ocs, false);
  }
  for (int r = full; r < rows; ++r) {
    const float* hr = h + std::size_t(r) * ldh;
    float* o = out + std::size_t(r) * ldo;
    int c = 0;
    for (; c + 64 <= ncols; c += 64) packed_micro<1, 8>(hr, 0, P + c0 + c, W, K, o + (c / 16) * ocs, 0, ocs, false, add);
    if (ncols - c >= 48) {
      packed_micro<1, 6>(hr, 0, P + c0 + c, W, K, o + (c / 16) * ocs, 0, ocs, false, add);
      c += 48;
    }
    if (ncols - c >= 32) {
      packed_micro<1, 4>(hr, 0, P + c0 + c, W, K, o + (c / 16) * ocs, 0, ocs, false, add);
      c += 32;
    }
    if (ncols - c >= 16) packed_micro<1, 2>(hr, 0, P + c0 + c, W, K, o + (c / 16) * ocs, 0, ocs, false, add);
  }
}

#if defined(__AVX512F__)
// ---- 512-bit kernels (AVX-512F) --------------------------------------------------------------
// R rows x NV vectors of 16 columns (one chunk each), accumulators in registers. With one row
// the weights are FMA memory operands and k is unrolled by two into two accumulator sets (one
// row is bound by reading P from L2; 2*NV chains hide the FMA latency); with several rows each
// weight vector is loaded once and reused for every row.
// OneChain (one row): a single chain per output, summed in the order of the multi-row kernels.
template <int R, int NV, bool OneChain = false>
inline void packed_micro512(const float* h, int ldh, const float* P, int W, int K, float* out,
                            int ldo, int ocs, bool accumulate, bool add_out = false) {
  __m512 c[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v)
      c[r][v] = accumulate ? _mm512_loadu_ps(out + std::size_t(r) * ldo + v * ocs) : _mm512_setzero_ps();
  if constexpr (R == 1 && !OneChain) {
    __m512 d[NV];
    for (int v = 0; v < NV; ++v) d[v] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      const float* q = P + std::size_t(k) * W;
      const __m512 x0 = _mm512_set1_ps(h[k]), x1 = _mm512_set1_ps(h[k + 1]);
      for (int v = 0; v < NV; ++v) c[0][v] = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * v), x0, c[0][v]);
      for (int v = 0; v < NV; ++v) d[v] = _mm512_fmadd_ps(_mm512_loadu_ps(q + W + 16 * v), x1, d[v]);
    }
    if (k < K) {
      const __m512 x0 = _mm512_set1_ps(h[k]);
      for (int v = 0; v < NV; ++v)
        c[0][v] = _mm512_fmadd_ps(_mm512_loadu_ps(P + std::size_t(k) * W + 16 * v), x0, c[0][v]);
    }
    for (int v = 0; v < NV; ++v) c[0][v] = _mm512_add_ps(c[0][v], d[v]);
  } else {
    for (int k = 0; k < K; ++k) {
      const float* q = P + std::size_t(k) * W;
      __m512 u[NV];
      for (int v = 0; v < NV; ++v) u[v] = _mm512_loadu_ps(q + 16 * v);
      for (int r = 0; r < R; ++r) {
        const __m512 x = _mm512_set1_ps(h[std::size_t(r) * ldh + k]);
        for (int v = 0; v < NV; ++v) c[r][v] = _mm512_fmadd_ps(u[v], x, c[r][v]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      float* o = out + std::size_t(r) * ldo + v * ocs;
      _mm512_storeu_ps(o, add_out ? _mm512_add_ps(_mm512_loadu_ps(o), c[r][v]) : c[r][v]);
    }
}

// All rows of one group of NV chunks: runs of R rows, then the leftover rows in runs of 4, 2
// and 1. Multi-row runs walk k in slices that stay in L1 and accumulate across slices.
// The one-row kernel sums in another order (two chains); rows_alike gives an odd last row one
// chain instead, in the multi-row kernels' order, so that every row's sums are the same
// whatever the number of rows.
template <int NV>
inline void packed_rows512(const float* h, int rows, int ldh, const float* P, int W, int K,
                           float* out, int ldo, int ocs, bool add, bool rows_alike) {
  constexpr int R = NV >= 4 ? 6 : 8;  // R * NV <= 24 accumulators of the 32 registers
  constexpr int kc = 128;             // a k-slice of the group, at most 32 KB
  const int paired = rows - rows % 2;
  if (paired > 0) {
    const int many = rows - rows % R;
    for (int k0 = 0; k0 < K; k0 += kc) {
      const int kn = std::min(kc, K - k0);
      const float* Pk = P + std::size_t(k0) * W;
      auto at = [&](int r) { return h + std::size_t(r) * ldh + k0; };
      int r = 0;
      for (; r < many; r += R)
        packed_micro512<R, NV>(at(r), ldh, Pk, W, kn, out + std::size_t(r) * ldo, ldo, ocs, k0 > 0);
      for (; r + 4 <= paired; r += 4)
        packed_micro512<4, NV>(at(r), ldh, Pk, W, kn, out + std::size_t(r) * ldo, ldo, ocs, k0 > 0);
      for (; r + 2 <= paired; r += 2)
        packed_micro512<2, NV>(at(r), ldh, Pk, W, kn, out + std::size_t(r) * ldo, ldo, ocs, k0 > 0);
    }
  }
  if (paired < rows && rows_alike && !add) {
    const float* hr = h + std::size_t(paired) * ldh;
    float* o = out + std::size_t(paired) * ldo;
    for (int k0 = 0; k0 < K; k0 += kc)
      packed_micro512<1, NV, true>(hr + k0, 0, P + std::size_t(k0) * W, W, std::min(kc, K - k0), o, 0, ocs, k0 > 0);
    return;
  }
  for (int r = paired; r < rows; ++r)
    packed_micro512<1, NV>(h + std::size_t(r) * ldh, 0, P, W, K, out + std::size_t(r) * ldo, 0, ocs, false, add);
}

// add (one row only): out += the product, added once it is complete. rows_alike: see
// packed_rows512.
inline void packed_product(const float* h, int rows, int ldh, const float* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16, bool add = false,
                           bool rows_alike = false) {
  int c = 0;
  for (; c + 64 <= ncols; c += 64)
    packed_rows512<4>(h, rows, ldh, P + c0 + c, W, K, out + (c / 16) * ocs, ldo, ocs, add, rows_alike);
  float* o = out + (c / 16) * ocs;
  switch ((ncols - c) / 16) {
    case 3: packed_rows512<3>(h, rows, ldh, P + c0 + c, W, K, o, ldo, ocs, add, rows_alike); break;
    case 2: packed_rows512<2>(h, rows, ldh, P + c0 + c, W, K, o, ldo, ocs, add, rows_alike); break;
    case 1: packed_rows512<1>(h, rows, ldh, P + c0 + c, W, K, o, ldo, ocs, add, rows_alike); break;
    default: break;
  }
}

#if defined(__AVX512BF16__)
// ---- bfloat16 dot products (AVX512-BF16) -----------------------------------------------------
// VDPBF16PS multiplies pairs of bfloat16 exactly and adds both products to a float32
// accumulator (denormals flushed). h is rounded to bfloat16 pairs (h[2j], h[2j+1]) once per
// call; the weights are stored in k-pairs (Bf16Layout::KPair). The bfloat16 packs are streamed
// at every batch size: one row (batch 1) by bf16_dot_row, with two accumulator chains; several
// rows by bf16_blocks_product, each weight vector loaded once for up to eight rows. Where
// VDPBF16PS issues at the rate of an FMA (AMD Zen 5: both 0.3 ns a 512-bit instruction) that
// doubles the multiply-adds per instruction over float32; where it costs two FMAs (Intel
// Sapphire Rapids) it halves the bytes for the same time, and the amx build takes over there.
#if RNNKIT_AMX
// The amx build multiplies several rows on AMX tiles instead (tile_blocks_product below), so
// its blocks are padded for whole B tiles.
constexpr Bf16Layout kBf16Layout = Bf16Layout::KPair32;
#else
constexpr Bf16Layout kBf16Layout = Bf16Layout::KPair;
#endif
constexpr int kBf16MaxRows = 1 << 30;
constexpr bool kBf16RoundsH = true;

// NV chunks of one row from Kp pairs of h (hp) and the pair rows of P (row stride 2*W).
// add: out += the sum, added once it is complete.
template <int NV>
inline void bf16_dot_row(const std::uint32_t* hp, const std::uint16_t* P, int W, int Kp, float* out,
                         int ocs, bool add) {
  __m512 c[NV], d[NV];
  for (int v = 0; v < NV; ++v) c[v] = d[v] = _mm512_setzero_ps();
  auto wv = [&](int j, int v) {
    return (__m512bh)_mm512_loadu_si512(P + (std::size_t(j) * W + 16 * v) * 2);
  };
  int j = 0;
  for (; j + 2 <= Kp; j += 2) {
    const __m512bh x0 = (__m512bh)_mm512_set1_epi32(int(hp[j]));
    const __m512bh x1 = (__m512bh)_mm512_set1_epi32(int(hp[j + 1]));
    for (int v = 0; v < NV; ++v) c[v] = _mm512_dpbf16_ps(c[v], wv(j, v), x0);
    for (int v = 0; v < NV; ++v) d[v] = _mm512_dpbf16_ps(d[v], wv(j + 1, v), x1);
  }
  if (j < Kp) {
    const __m512bh x0 = (__m512bh)_mm512_set1_epi32(int(hp[j]));
    for (int v = 0; v < NV; ++v) c[v] = _mm512_dpbf16_ps(c[v], wv(j, v), x0);
  }
  for (int v = 0; v < NV; ++v) {
    const __m512 sum = _mm512_add_ps(c[v], d[v]);
    _mm512_storeu_ps(out + v * ocs, add ? _mm512_add_ps(_mm512_loadu_ps(out + v * ocs), sum) : sum);
  }
}

inline void packed_product(const float* h, int rows, int ldh, const std::uint16_t* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16, bool add = false,
                           bool /*rows_alike: one kernel for every row*/ = false) {
  constexpr int kSlice = 1024;  // h is rounded into pairs a slice of k at a time
  alignas(64) std::uint32_t hp[kSlice / 2];
  for (int r = 0; r < rows; ++r) {
    const float* hr = h + std::size_t(r) * ldh;
    float* o = out + std::size_t(r) * ldo;
    for (int k0 = 0; k0 < K; k0 += kSlice) {
      const int kn = std::min(kSlice, K - k0), kp = (kn + 1) / 2;
      int k = 0;
      for (; k + 32 <= kn; k += 32)  // 32 floats -> 16 pairs, rounded to nearest even
        _mm512_store_si512(hp + k / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(hr + k0 + k + 16),
                                                                     _mm512_loadu_ps(hr + k0 + k)));
      for (; k < kn; k += 2)
        hp[k / 2] = std::uint32_t(to_bf16(hr[k0 + k])) |
                    (k + 1 < kn ? std::uint32_t(to_bf16(hr[k0 + k + 1])) << 16 : 0u);
      const std::uint16_t* Pk = P + (std::size_t(k0 / 2) * W + c0) * 2;
      for (int c = 0; c < ncols; c += 64) {
        const std::uint16_t* Pc = Pk + std::size_t(c) * 2;
        float* oc = o + (c / 16) * ocs;
        switch (std::min(4, (ncols - c) / 16)) {
          case 4: bf16_dot_row<4>(hp, Pc, W, kp, oc, ocs, add || k0 > 0); break;
          case 3: bf16_dot_row<3>(hp, Pc, W, kp, oc, ocs, add || k0 > 0); break;
          case 2: bf16_dot_row<2>(hp, Pc, W, kp, oc, ocs, add || k0 > 0); break;
          default: bf16_dot_row<1>(hp, Pc, W, kp, oc, ocs, add || k0 > 0); break;
        }
      }
    }
  }
}

// Rows of h as bfloat16 pairs (h[2j], h[2j+1]), nearest even: hp (rows, Kp), Kp = ceil(K/2).
inline void pair_rows_bf16(const float* h, int rows, int ldh, int K, std::uint32_t* hp) {
  const int Kp = (K + 1) / 2;
  for (int r = 0; r < rows; ++r) {
    const float* src = h + std::size_t(r) * ldh;
    std::uint32_t* d = hp + std::size_t(r) * Kp;
    int k = 0;
    for (; k + 32 <= K; k += 32)
      _mm512_storeu_si512(d + k / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16),
                                                                  _mm512_loadu_ps(src + k)));
    for (; k < K; k += 2)
      d[k / 2] = std::uint32_t(to_bf16(src[k])) | (k + 1 < K ? std::uint32_t(to_bf16(src[k + 1])) << 16 : 0u);
  }
}

// R rows x NV chunks: out = hp (rows of Kp pairs, ldp apart) * P (pair rows 2*W apart), one
// accumulator per row and chunk summed in pair order, so that a row's result is the same for
// any R (accumulate: onto out, a later k-slice).
template <int R, int NV>
inline void bf16_dot_rows(const std::uint32_t* hp, int ldp, const std::uint16_t* P, int W, int Kp, float* out,
                          int ldo, int ocs, bool accumulate) {
  __m512 c[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v)
      c[r][v] = accumulate ? _mm512_loadu_ps(out + std::size_t(r) * ldo + v * ocs) : _mm512_setzero_ps();
  for (int j = 0; j < Kp; ++j) {
    __m512bh w[NV];
    for (int v = 0; v < NV; ++v) w[v] = (__m512bh)_mm512_loadu_si512(P + (std::size_t(j) * W + 16 * v) * 2);
    for (int r = 0; r < R; ++r) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32(int(hp[std::size_t(r) * ldp + j]));
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_dpbf16_ps(c[r][v], w[v], x);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + std::size_t(r) * ldo + v * ocs, c[r][v]);
}

// All rows for one group of NV chunks, in k-slices whose weights stay in L1: runs of R rows,
// then 4, 2 and 1.
template <int NV>
inline void bf16_rows(const std::uint32_t* hp, int rows, int ldp, const std::uint16_t* P, int W, int Kp,
                      float* out, int ldo, int ocs) {
  constexpr int R = NV >= 4 ? 6 : 8;  // R * NV <= 24 accumulators of the 32 registers
  constexpr int kc = 64;              // pairs a slice: at most 16 KB of weights
  for (int j0 = 0; j0 < Kp; j0 += kc) {
    const int jn = std::min(kc, Kp - j0);
    const std::uint16_t* Pj = P + std::size_t(j0) * W * 2;
    auto at = [&](int r) { return hp + std::size_t(r) * ldp + j0; };
    float* o = out;
    int r = 0;
    for (; r + R <= rows; r += R) bf16_dot_rows<R, NV>(at(r), ldp, Pj, W, jn, o + std::size_t(r) * ldo, ldo, ocs, j0 > 0);
    for (; r + 4 <= rows; r += 4) bf16_dot_rows<4, NV>(at(r), ldp, Pj, W, jn, o + std::size_t(r) * ldo, ldo, ocs, j0 > 0);
    for (; r + 2 <= rows; r += 2) bf16_dot_rows<2, NV>(at(r), ldp, Pj, W, jn, o + std::size_t(r) * ldo, ldo, ocs, j0 > 0);
    for (; r < rows; ++r) bf16_dot_rows<1, NV>(at(r), ldp, Pj, W, jn, o + std::size_t(r) * ldo, ldo, ocs, j0 > 0);
  }
}

// packed_blocks_product for several rows of bfloat16 packs: h rounded to pairs once for every
// unit block, then each block's chunks in groups of up to four.
inline void bf16_blocks_product(const float* h, int rows, int ldh, const std::uint16_t* P, std::size_t block_stride,
                                int first, int last, int W, int c0, int ncols, int K, float* out, int ldo, int ocs) {
  const int Kp = (K + 1) / 2;
  thread_local Buffer<std::uint32_t> buf;  // (rows, Kp) h in bfloat16 pairs
  std::uint32_t* hp = buf.reserve(std::size_t(rows) * Kp);
  pair_rows_bf16(h, rows, ldh, K, hp);
  for (int ub = first; ub < last; ++ub) {
    const std::uint16_t* Pb = P + ub * block_stride + std::size_t(c0) * 2;
    float* ob = out + std::size_t(ub) * kUnitBlock;
    for (int c = 0; c < ncols; c += 64) {
      const std::uint16_t* Pc = Pb + std::size_t(c) * 2;
      float* oc = ob + (c / 16) * ocs;
      switch (std::min(4, (ncols - c) / 16)) {
        case 4: bf16_rows<4>(hp, rows, Kp, Pc, W, Kp, oc, ldo, ocs); break;
        case 3: bf16_rows<3>(hp, rows, Kp, Pc, W, Kp, oc, ldo, ocs); break;
        case 2: bf16_rows<2>(hp, rows, Kp, Pc, W, Kp, oc, ldo, ocs); break;
        default: bf16_rows<1>(hp, rows, Kp, Pc, W, Kp, oc, ldo, ocs); break;
      }
    }
  }
}

#if RNNKIT_AMX
// ---- AMX tiles (TDPBF16PS) -------------------------------------------------------------------
// packed_blocks_product runs on the tiles for any number of rows (only the batch-1 streaming
// path, packed_product, stays on VDPBF16PS), so that a row's result never depends on how a
// team splits the batch. Where tiles start to beat the float32 FMA kernels is not yet measured
// on an AMX machine: bench/bench_bf16.py --crossover times amx against avx512bf16 by batch.
constexpr bool kBf16Tiles = true;
constexpr int kBf16Input = 1;  // x rounded to bfloat16, as VDPBF16PS (and torch's bfloat16) takes it

// Rows of h rounded to bfloat16 (nearest even, as VCVTNE2PS2BF16) into hb: R rows of Kt
// elements, zero beyond K columns and beyond `rows` rows, so that whole tiles can be loaded.
inline void round_rows_bf16(const float* h, int rows, int ldh, int K, int Kt, int R, std::uint16_t* hb) {
  for (int r = 0; r < R; ++r) {
    std::uint16_t* d = hb + std::size_t(r) * Kt;
    int k = 0;
    if (r < rows) {
      const float* src = h + std::size_t(r) * ldh;
      for (; k + 32 <= K; k += 32)
        _mm512_storeu_si512(d + k, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k)));
      for (; k < K; ++k) d[k] = to_bf16(src[k]);
    }
    std::memset(d + k, 0, std::size_t(Kt - k) * sizeof(std::uint16_t));
  }
}

// n <= 16 floats rounded to bfloat16 at dst (the rest of dst's 16 untouched).
inline void round16_bf16(const float* src, int n, std::uint16_t* dst) {
  const __mmask16 m = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
  const __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src));
  _mm256_mask_storeu_epi16(dst, m, (__m256i)v);
}

// n <= 16 floats copied (one masked load and store: no call for 64 bytes).
inline void copy16(const float* src, int n, float* dst) {
  const __mmask16 m = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
  _mm512_mask_storeu_ps(dst, m, _mm512_maskz_loadu_ps(m, src));
}

// Every tile 16 rows of 64 bytes: C tiles 0-3 (16 x 16 floats), A tiles 4 and 5 (16 rows x 32
// bfloat16 of h: 16 pairs), B tiles 6 and 7 (16 pair rows x 16 columns of weights).
inline TileConfig tile_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.set(t, 16, 64);
  return c;
}

// The tile configuration for the calling thread's scope: loaded on construction, released
// (TILERELEASE) on destruction. The configuration is per thread.
struct TileScope {
  TileScope() { tiles::configure(tile_config()); }
  ~TileScope() { tiles::release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

// C tiles (+)= 16 or 32 rows of a (row stride sa bytes) times 16 or 32 columns of b (pair rows
// sb bytes apart, two 16-column chunks 64 bytes apart), over nkb blocks of 32 k. Fresh: the
// tiles start from zero, else they add to what they hold (a second operand pair's way in).
// C0: rows 0-15 x chunk 0, C1: rows 0-15 x chunk 1, C2: rows 16-31 x chunk 0, C3: rows 16-31 x
// chunk 1.
template <bool TwoRows, bool TwoCols, bool Fresh = true>
inline void tile_2x2(const std::uint16_t* a, std::size_t sa, const std::uint16_t* b, std::size_t sb, int nkb) {
  if (Fresh) {
    tiles::zero<0>();
    if (TwoCols) tiles::zero<1>();
    if (TwoRows) tiles::zero<2>();
    if (TwoRows && TwoCols) tiles::zero<3>();
  }
  const std::size_t a_rows16 = 16 * sa / sizeof(std::uint16_t), b_block = 16 * sb / sizeof(std::uint16_t);
  for (int kb = 0; kb < nkb; ++kb) {
    const std::uint16_t* ak = a + std::size_t(kb) * 32;  // 32 bfloat16 of each row
    const std::uint16_t* bk = b + std::size_t(kb) * b_block;  // 16 pair rows
    tiles::load<4>(ak, sa);
    tiles::load<6>(bk, sb);
    if (TwoCols) tiles::load<7>(bk + 32, sb);
    if (TwoRows) tiles::load<5>(ak + a_rows16, sa);
    tiles::dpbf16<0, 4, 6>();
    if (TwoCols) tiles::dpbf16<1, 4, 7>();
    if (TwoRows) tiles::dpbf16<2, 5, 6>();
    if (TwoRows && TwoCols) tiles::dpbf16<3, 5, 7>();
  }
}

// Stores C tile `Tile` (rows r0 .. r0 + 15) at dst (row stride ldo floats): straight into dst
// when all 16 rows exist, else through a scratch tile, copying the rows below `rows`.
template <int Tile>
inline void store_rows(float* dst, int ldo, int r0, int rows) {
  if (r0 + 16 <= rows) {
    tiles::store<Tile>(dst + std::size_t(r0) * ldo, std::size_t(ldo) * sizeof(float));
    return;
  }
  alignas(64) float part[16 * 16];
  tiles::store<Tile>(part, 64);
  for (int r = r0; r < rows; ++r) std::memcpy(dst + std::size_t(r) * ldo, part + (r - r0) * 16, 16 * sizeof(float));
}

// packed_blocks_product on the tiles: h rounded to bfloat16 once for every unit block, then
// for each block, chunk pair and 32 rows, one tile_2x2 over all of K. The tiles are configured
// on entry and released on exit, on the calling thread (the configuration is per thread).
inline void tile_blocks_product(const float* h, int rows, int ldh, const std::uint16_t* P, std::size_t block_stride,
                                int first, int last, int W, int c0, int ncols, int K, float* out, int ldo, int ocs) {
  const int Kt = bf16_rows(K, Bf16Layout::KPair32), R = (rows + 15) / 16 * 16;
  thread_local Buffer<std::uint16_t> hbuf;  // (R, Kt) h in bfloat16
  std::uint16_t* hb = hbuf.reserve(std::size_t(R) * Kt);
  round_rows_bf16(h, rows, ldh, K, Kt, R, hb);
  TileScope scope;
  const std::size_t sa = std::size_t(Kt) * sizeof(std::uint16_t), sb = std::size_t(W) * 2 * sizeof(std::uint16_t);
  const int v0 = c0 / kUnitBlock, nv = ncols / kUnitBlock, nkb = Kt / 32;
  for (int ub = first; ub < last; ++ub) {
    float* ob = out + std::size_t(ub) * kUnitBlock;
    for (int j = 0; j < nv; j += 2) {
      const std::uint16_t* b = P + ub * block_stride + std::size_t(v0 + j) * 2 * kUnitBlock;
      const bool two_cols = j + 1 < nv;
      float* o0 = ob + std::size_t(j) * ocs;
      float* o1 = o0 + ocs;
      for (int r = 0; r < R; r += 32) {
        const std::uint16_t* a = hb + std::size_t(r) * Kt;
        const bool two_rows = r + 16 < R;
        if (two_rows && two_cols) tile_2x2<true, true>(a, sa, b, sb, nkb);
        else if (two_rows) tile_2x2<true, false>(a, sa, b, sb, nkb);
        else if (two_cols) tile_2x2<false, true>(a, sa, b, sb, nkb);
        else tile_2x2<false, false>(a, sa, b, sb, nkb);
        store_rows<0>(o0, ldo, r, rows);
        if (two_cols) store_rows<1>(o1, ldo, r, rows);
        if (two_rows) store_rows<2>(o0, ldo, r + 16, rows);
        if (two_rows && two_cols) store_rows<3>(o1, ldo, r + 16, rows);
      }
    }
  }
}

// Two chunks (32 columns) of one unit block's pre-activations for 16 or 32 tile rows, both
// products in the same tiles: acc (rows, 32 of ld floats) = xa * Px + ha * Ph, where xa and
// ha are rows of bfloat16 (row strides Kx and Kh elements, whole tiles: see round_rows_bf16)
// and Px, Ph the chunks' packed weights (Kx and Kh rows of W columns). Each output's sum runs
// over x's k-blocks, then h's, in order.
template <bool TwoRows>
inline void tile_chunk_pair(const std::uint16_t* xa, int Kx, const std::uint16_t* Px, const std::uint16_t* ha, int Kh,
                            const std::uint16_t* Ph, int W, float* acc, int ld) {
  const std::size_t sb = std::size_t(W) * 2 * sizeof(std::uint16_t), lb = std::size_t(ld) * sizeof(float);
  tile_2x2<TwoRows, true, true>(xa, std::size_t(Kx) * 2, Px, sb, Kx / 32);
  tile_2x2<TwoRows, true, false>(ha, std::size_t(Kh) * 2, Ph, sb, Kh / 32);
  tiles::store<0>(acc, lb);
  tiles::store<1>(acc + 16, lb);
  if (TwoRows) {
    tiles::store<2>(acc + 16 * ld, lb);
    tiles::store<3>(acc + 16 * ld + 16, lb);
  }
}

// One chunk (16 columns) of a unit block for 16 or 32 tile rows, its two products in separate
// tiles (the GRU's n gate, where r scales the recurrent term alone): accx (rows, 16 of ld
// floats) = xa * Px and acch = ha * Ph, operands as in tile_chunk_pair.
template <bool TwoRows>
inline void tile_chunk_split(const std::uint16_t* xa, int Kx, const std::uint16_t* Px, const std::uint16_t* ha, int Kh,
                             const std::uint16_t* Ph, int W, float* accx, float* acch, int ld) {
  const std::size_t sb = std::size_t(W) * 2 * sizeof(std::uint16_t), lb = std::size_t(ld) * sizeof(float);
  tile_2x2<TwoRows, false, true>(xa, std::size_t(Kx) * 2, Px, sb, Kx / 32);  // C0 (and C2)
  tiles::zero<1>();
  if (TwoRows) tiles::zero<3>();
  const std::size_t sa = std::size_t(Kh) * 2, b_block = std::size_t(16) * 2 * W;
  for (int kb = 0; kb < Kh / 32; ++kb) {
    const std::uint16_t* ak = ha + std::size_t(kb) * 32;
    tiles::load<4>(ak, sa);
    tiles::load<7>(Ph + kb * b_block, sb);
    if (TwoRows) tiles::load<5>(ak + 16 * Kh, sa);
    tiles::dpbf16<1, 4, 7>();
    if (TwoRows) tiles::dpbf16<3, 5, 7>();
  }
  tiles::store<0>(accx, lb);
  tiles::store<1>(acch, lb);
  if (TwoRows) {
    tiles::store<2>(accx + 16 * ld, lb);
    tiles::store<3>(acch + 16 * ld, lb);
  }
}
#endif  // RNNKIT_AMX
#else
// AVX-512 without BF16: the 256-bit kernels widen the bfloat16 weights.
constexpr Bf16Layout kBf16Layout = Bf16Layout::Chunk16;
constexpr int kBf16MaxRows = 2;
constexpr bool kBf16RoundsH = false;
inline void packed_product(const float* h, int rows, int ldh, const std::uint16_t* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16, bool add = false,
                           bool /*rows_alike: the 256-bit kernels sum every row alike*/ = false) {
  packed_product_avx2(h, rows, ldh, P, W, c0, ncols, K, out, ldo, ocs, add);
}
#endif  // __AVX512BF16__

#else   // AVX2 without AVX-512: the 256-bit kernels for both weight types
constexpr Bf16Layout kBf16Layout = Bf16Layout::Chunk16;
constexpr int kBf16MaxRows = 2;
constexpr bool kBf16RoundsH = false;
template <class Wt>
inline void packed_product(const float* h, int rows, int ldh, const Wt* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16, bool add = false,
                           bool /*rows_alike: the 256-bit kernels sum every row alike*/ = false) {
  packed_product_avx2(h, rows, ldh, P, W, c0, ncols, K, out, ldo, ocs, add);
}
#endif  // __AVX512F__

#else   // no AVX2: the generic kernels
constexpr Bf16Layout kBf16Layout = Bf16Layout::Chunk16;
constexpr int kBf16MaxRows = 2;
constexpr bool kBf16RoundsH = false;

template <class Wt>
inline void packed_product(const float* h, int rows, int ldh, const Wt* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16, bool add = false,
                           bool /*rows_alike: the generic kernels sum every row alike*/ = false) {
  packed_product_generic(h, rows, ldh, P, W, c0, ncols, K, out, ldo, ocs, add);
}
#endif  // RNNKIT_PACKED_KERNELS

#if !RNNKIT_AMX
constexpr bool kBf16Tiles = false;
#if RNNKIT_PACKED_KERNELS && defined(__AVX512BF16__)
constexpr int kBf16Input = 1;  // x rounded to bfloat16 (VDPBF16PS)
#else
constexpr int kBf16Input = 0;  // x in float32: the bfloat16 weights are widened
#endif
#endif

// Unit blocks [first, last) of packed weights, block ub at P + ub * block_stride: for each,
// out + ub*16 = h (rows, K) * block(:, c0 : c0 + ncols), chunks ocs apart, as packed_product.
template <class Wt>
inline void packed_blocks_product(const float* h, int rows, int ldh, const Wt* P, std::size_t block_stride,
                                  int first, int last, int W, int c0, int ncols, int K, float* out, int ldo,
                                  int ocs) {
#if RNNKIT_AMX
  if constexpr (std::is_same<Wt, std::uint16_t>::value) {
    tile_blocks_product(h, rows, ldh, P, block_stride, first, last, W, c0, ncols, K, out, ldo, ocs);
    return;
  }
#elif RNNKIT_PACKED_KERNELS && defined(__AVX512BF16__)
  if constexpr (std::is_same<Wt, std::uint16_t>::value) {
    bf16_blocks_product(h, rows, ldh, P, block_stride, first, last, W, c0, ncols, K, out, ldo, ocs);
    return;
  }
#endif
  for (int ub = first; ub < last; ++ub)
    packed_product(h, rows, ldh, P + ub * block_stride, W, c0, ncols, K, out + std::size_t(ub) * kUnitBlock, ldo,
                   ocs);
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
