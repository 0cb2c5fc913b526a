// Shared pieces of the per-ISA kernels: Eigen map types, elementwise activations and their
// derivatives, the per-thread workspace, and the whole-sequence GEMM helpers.
// Included only by rnn_kernels.cpp, which defines RNNKIT_ISA_NS and renames Eigen's namespace.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "rnnkit/kernels.hpp"
#include "rnnkit/packing.hpp"
#include "rnnkit/thread_pool.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define RNNKIT_PACKED_KERNELS 1
#else
#define RNNKIT_PACKED_KERNELS 0
#endif

namespace rnnkit {
namespace RNNKIT_ISA_NS {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatMap = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using CMatMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ArrMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CArrMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using RowVecMap = Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>;

// A (rows, cols) row-major view with row stride ld (default: dense).
template <class T>
inline MatMap<T> mat(T* p, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld = -1) {
  return MatMap<T>(p, rows, cols, Eigen::OuterStride<>(ld < 0 ? cols : ld));
}
template <class T>
inline CMatMap<T> cmat(const T* p, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld = -1) {
  return CMatMap<T>(p, rows, cols, Eigen::OuterStride<>(ld < 0 ? cols : ld));
}

// out = f(in), n elements; in may alias out.
template <class T>
inline void activate(Activation f, const T* in, T* out, int n) {
  CArrMap<T> x(in, n);
  ArrMap<T> y(out, n);
  switch (f) {
    case Activation::Tanh: y = x.tanh(); break;
    case Activation::Sigmoid: y = x.logistic(); break;
    case Activation::Relu: y = x.max(T(0)); break;
    case Activation::Linear:
      if (in != out) y = x;
      break;
    case Activation::HardSigmoid: y = (x * T(1.0 / 6.0) + T(0.5)).max(T(0)).min(T(1)); break;
  }
}

// d *= f'(pre), written in terms of the output y = f(pre), n elements.
template <class T>
inline void scale_by_derivative(Activation f, const T* y_, T* d_, int n) {
  CArrMap<T> y(y_, n);
  ArrMap<T> d(d_, n);
  switch (f) {
    case Activation::Tanh: d *= T(1) - y.square(); break;
    case Activation::Sigmoid: d *= y * (T(1) - y); break;
    case Activation::Relu: d = (y > T(0)).select(d, T(0)); break;
    case Activation::Linear: break;
    case Activation::HardSigmoid:
      d = ((y > T(0)) && (y < T(1))).select(d * T(1.0 / 6.0), T(0));
      break;
  }
}

// Scratch memory for one thread; grows to the largest call seen and is then reused.
template <class T>
struct Workspace {
  Buffer<T> gx;      // (T*B, G*H) hoisted input projection
  Buffer<T> acc;     // (B, G*H) this step's pre-activations
  Buffer<T> h, c;    // (B, Hout), (B, H) running state
  Buffer<T> m, hp;   // (B, H), (B, P) LSTM projection scratch
  Buffer<T> tmp;     // (H) per-row scratch
  Buffer<T> bias;    // (G*H) folded biases
  Buffer<T> dgx;     // (T*B, G*H) gradients of the gate pre-activations (input side)
  Buffer<T> dga;     // (T*B, G*H) GRU reset_after: gradients of the recurrent pre-activations
  Buffer<T> dhp_all; // (T*B, P) LSTM: gradients of the projected outputs
  Buffer<T> dstep;   // (B, G*H) this step's gate gradients
  Buffer<T> dhb;     // (B, Hout) total gradient reaching this step's output
  Buffer<T> dm;      // (B, H) LSTM projection: gradient of o * act(c)
  Buffer<T> dprev;   // (B, Hout) gradient flowing to h_prev through U
  Buffer<T> direct;  // (B, H) GRU: gradient flowing to h_prev directly
  Buffer<T> dh, dc;  // (B, Hout), (B, H) running state gradients
};

template <class T>
inline Workspace<T>& workspace() {
  thread_local Workspace<T> ws;
  return ws;
}

template <class T>
inline void copy_or_zero(T* dst, const T* src, std::size_t n) {
  if (src)
    std::memcpy(dst, src, n * sizeof(T));
  else
    std::memset(static_cast<void*>(dst), 0, n * sizeof(T));
}

// A (T*B, width) buffer with one row per (t, b). Every row is written when all sequences have
// length T; with lengths, the rows past a sequence's end are never written yet are read by the
// whole-sequence GEMMs, so they start at zero.
template <class T>
inline T* rows_buffer(Buffer<T>& buf, std::size_t n, const SeqShape& q) {
  return q.lengths ? buf.zeros(n) : buf.reserve(n);
}

// The row (t*B + b) that sequence b reads at loop step `step` (time runs backwards from its own
// last step in the reverse direction), or -1 once the sequence has ended.
inline int64_t step_row(const SeqShape& q, bool reverse, int step, int b) {
  const int len = q.length(b);
  if (step >= len) return -1;
  return int64_t(reverse ? len - 1 - step : step) * q.B + b;
}

// Output rows of steps past a sequence's length are zero (PyTorch packed-sequence semantics).
template <class T>
inline void zero_padding(const SeqShape& q, T* y, int64_t ldy, int width) {
  if (!q.lengths) return;
  for (int b = 0; b < q.B; ++b)
    for (int t = q.length(b); t < q.T; ++t)
      std::memset(static_cast<void*>(y + (int64_t(t) * q.B + b) * ldy), 0, width * sizeof(T));
}

// Column sums of a (rows, cols) matrix added into out (cols): bias gradients. Summed row by
// row into an aligned buffer, so every element's order is fixed whatever out's alignment.
template <class T>
inline void add_colsum(const T* m, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld, T* out) {
  if (!out) return;
  thread_local Buffer<T> sums;
  ArrMap<T> acc(sums.zeros(cols), cols);
  for (Eigen::Index r = 0; r < rows; ++r) acc += CArrMap<T>(m + r * ld, cols);
  for (Eigen::Index c = 0; c < cols; ++c) out[c] += acc[c];
}

// ---------------------------------------------------------------------------------------------
// Packed recurrent product: out (rows, ncols) = h (rows, K) * P(:, c0 : c0 + ncols), where P is
// one unit block of the packed recurrent weights, (K, W) with row stride W (packing.hpp), in
// float or in bfloat16 (Wt = std::uint16_t). Both take the same element offsets; a bfloat16
// chunk of 16 columns is widened to the same two float vectors, so the two give bitwise equal
// results for weights that bfloat16 represents exactly.

// bfloat16 packs halve the bytes the 1-row kernel streams per step; from three rows on, the
// product reuses each weight vector across rows and is compute-bound, and widening costs more
// than the bytes it saves (measured: 1.4x faster at B=2, 0.75x at B=3, H=256).
constexpr int kMaxBf16Rows = 2;

#if RNNKIT_PACKED_KERNELS
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
template <int R, int NV, class Wt>
inline void packed_micro(const float* h, int ldh, const Wt* P, int W, int K, float* out, int ldo,
                         int ocs, bool accumulate) {
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
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(dst(r, v), c[r][v]);
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

// out = h (rows, K) * P(:, c0 : c0 + ncols), ncols a multiple of 16; column chunk j of row r
// goes to out + r*ldo + j*ocs.
template <class Wt>
inline void packed_product(const float* h, int rows, int ldh, const Wt* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16) {
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
    for (; c + 64 <= ncols; c += 64) packed_micro<1, 8>(hr, 0, P + c0 + c, W, K, o + (c / 16) * ocs, 0, ocs, false);
    if (ncols - c >= 48) {
      packed_micro<1, 6>(hr, 0, P + c0 + c, W, K, o + (c / 16) * ocs, 0, ocs, false);
      c += 48;
    }
    if (ncols - c >= 32) {
      packed_micro<1, 4>(hr, 0, P + c0 + c, W, K, o + (c / 16) * ocs, 0, ocs, false);
      c += 32;
    }
    if (ncols - c >= 16) packed_micro<1, 2>(hr, 0, P + c0 + c, W, K, o + (c / 16) * ocs, 0, ocs, false);
  }
}
#else
inline float packed_at(const float* P, std::size_t i) { return P[i]; }
inline float packed_at(const std::uint16_t* P, std::size_t i) { return from_bf16(P[bf16_index(i)]); }

template <class Wt>
inline void packed_product(const float* h, int rows, int ldh, const Wt* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < ncols; ++c) {
      float acc = 0;
      for (int k = 0; k < K; ++k)
        acc += h[std::size_t(r) * ldh + k] * packed_at(P, std::size_t(k) * W + c0 + c);
      out[std::size_t(r) * ldo + (c / 16) * ocs + c % 16] = acc;
    }
}
#endif

// out (rows, N) = d (rows, K) [row stride ldd] * w (K, N) [row stride ldw]: backward's per-step
// product with U, which is already laid out K-major for it. Uses the SIMD kernel when it can.
template <class T>
inline void step_product(const T* d, int rows, int ldd, const T* w, int ldw, int K, int N, T* out,
                         int ldo = -1) {
  if (ldo < 0) ldo = N;
#if RNNKIT_PACKED_KERNELS
  if constexpr (std::is_same<T, float>::value) {
    if (N % 16 == 0) {
      packed_product(d, rows, ldd, w, ldw, 0, N, K, out, ldo);
      return;
    }
  }
#endif
  mat(out, rows, N, ldo).noalias() = cmat(d, rows, K, ldd) * cmat(w, K, N, ldw);
}

// Runs body(tid, nt) on a team of up to n threads (see team_run).
template <class F>
inline void run_team(int n, F& body) {
  if (n <= 1) {
    body(0, 1);
    return;
  }
  team_run(n, [](void* p, int tid, int nt) { (*static_cast<F*>(p))(tid, nt); }, &body);
}

// Splits [0, rows) across up to `threads` threads (when the work is worth it) and calls
// f(r0, r1) for each part; every part computes its rows exactly as a single call would.
template <class F>
inline void split_rows(int threads, Eigen::Index rows, double flops, F&& f) {
  const int want = (threads > 1 && flops >= 2e7) ? threads : 1;  // ~0.2 ms: pays for a dispatch
  auto body = [&](int tid, int nt) {
    const Eigen::Index r0 = rows * tid / nt, r1 = rows * (tid + 1) / nt;
    if (r1 > r0) f(r0, r1);
  };
  run_team(want, body);
}

// gx (TB, GH) = x (TB, I) * w_ih^T + bias (GH): the input projection for every step at once.
template <class T>
inline void input_projection(const T* x, const T* w_ih, const T* bias, T* gx, Eigen::Index TB,
                             Eigen::Index I, Eigen::Index GH, int threads) {
  split_rows(threads, TB, 2.0 * TB * I * GH, [&](Eigen::Index r0, Eigen::Index r1) {
    auto Gx = mat(gx + r0 * GH, r1 - r0, GH);
    Gx.noalias() = cmat(x + r0 * I, r1 - r0, I) * cmat(w_ih, GH, I).transpose();
    if (bias) Gx.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(bias, GH);
  });
}

// The whole-sequence GEMMs of backward, split across threads by output rows:
// gw (M, N) += d[:, c0:c0+M]^T (TB, M)^T * x (TB, N), where d has row stride ldd.
template <class T>
inline void add_weight_grad(int threads, T* gw, const T* d, Eigen::Index ldd, Eigen::Index M,
                            const T* x, Eigen::Index TB, Eigen::Index N) {
  split_rows(threads, M, 2.0 * M * N * TB, [&](Eigen::Index r0, Eigen::Index r1) {
    mat(gw + r0 * N, r1 - r0, N).noalias() += cmat(d + r0, TB, r1 - r0, ldd).transpose() * cmat(x, TB, N);
  });
}

// dx (TB, I) += d (TB, G) * w (G, I).
template <class T>
inline void add_input_grad(int threads, T* dx, const T* d, const T* w, Eigen::Index TB,
                           Eigen::Index G, Eigen::Index I) {
  split_rows(threads, TB, 2.0 * TB * G * I, [&](Eigen::Index r0, Eigen::Index r1) {
    mat(dx + r0 * I, r1 - r0, I).noalias() += cmat(d + r0 * G, r1 - r0, G) * cmat(w, G, I);
  });
}

// Requests every cache line of [p, p + n) at once. After a barrier, the lines of h that the
// other team threads just wrote then arrive together instead of one miss at a time inside the
// product that reads them in order.
template <class T>
inline void prefetch_lines(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < n * int64_t(sizeof(T)); off += 64) __builtin_prefetch(c + off, 0, 3);
}

// The hidden units a team thread owns: whole 16-unit blocks [first, last), i.e. units
// [u0, u0 + n); with one thread, every unit.
struct ThreadUnits {
  int first, last, u0, n;
};
inline ThreadUnits thread_units(int H, int tid, int nt) {
  const int blocks = unit_blocks(H);
  const int first = int(int64_t(blocks) * tid / nt), last = int(int64_t(blocks) * (tid + 1) / nt);
  const int u0 = first * kUnitBlock;
  return {first, last, u0, std::min(H, last * kUnitBlock) - u0};
}


}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
