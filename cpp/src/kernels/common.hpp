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
// one unit block of the packed recurrent weights, (K, W) with row stride W (packing.hpp).

#if RNNKIT_PACKED_KERNELS
// R rows x NV vectors of 8 columns, accumulators in registers. With one row the weights are
// FMA memory operands (8 accumulators hide the FMA latency); with several, each weight vector
// is loaded once and reused for every row. Column chunk j (16 columns) of a row is stored at
// out + j*ocs: ocs = 16 keeps the row contiguous, ocs = Hp scatters gates into a gate-major row.
template <int R, int NV>
inline void packed_micro(const float* h, int ldh, const float* P, int W, int K, float* out, int ldo,
                         int ocs, bool accumulate) {
  __m256 c[R][NV];
  auto dst = [&](int r, int v) { return out + std::size_t(r) * ldo + (v / 2) * ocs + (v % 2) * 8; };
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = accumulate ? _mm256_loadu_ps(dst(r, v)) : _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const float* q = P + std::size_t(k) * W;
    if constexpr (R == 1) {
      const __m256 hb = _mm256_broadcast_ss(h + k);
      for (int v = 0; v < NV; ++v) c[0][v] = _mm256_fmadd_ps(_mm256_loadu_ps(q + v * 8), hb, c[0][v]);
    } else {
      __m256 u[NV];
      for (int v = 0; v < NV; ++v) u[v] = _mm256_loadu_ps(q + v * 8);
      for (int r = 0; r < R; ++r) {
        const __m256 hb = _mm256_broadcast_ss(h + r * ldh + k);
        for (int v = 0; v < NV; ++v) c[r][v] = _mm256_fmadd_ps(u[v], hb, c[r][v]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(dst(r, v), c[r][v]);
}

// out = h (rows, K) * P(:, c0 : c0 + ncols), ncols a multiple of 16; column chunk j of row r
// goes to out + r*ldo + j*ocs.
inline void packed_product(const float* h, int rows, int ldh, const float* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16) {
  constexpr int kc = 256;  // a 16-column slice of kc rows of P (16 KB) stays in L1
  const int full = rows - rows % 6;  // rows handled six at a time
  for (int c = 0; c < ncols; c += 16)
    for (int k0 = 0; k0 < K; k0 += kc)
      for (int rr = 0; rr < full; rr += 6)
        packed_micro<6, 2>(h + std::size_t(rr) * ldh + k0, ldh, P + std::size_t(k0) * W + c0 + c, W,
                           std::min(kc, K - k0), out + std::size_t(rr) * ldo + (c / 16) * ocs, ldo, ocs,
                           k0 > 0);
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
inline void packed_product(const float* h, int rows, int ldh, const float* P, int W, int c0,
                           int ncols, int K, float* out, int ldo, int ocs = 16) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < ncols; ++c) {
      float acc = 0;
      for (int k = 0; k < K; ++k) acc += h[std::size_t(r) * ldh + k] * P[std::size_t(k) * W + c0 + c];
      out[std::size_t(r) * ldo + (c / 16) * ocs + c % 16] = acc;
    }
}
#endif

// out (rows, N) = d (rows, K) [row stride ldd] * w (K, N) [row stride ldw]: backward's per-step
// product with U, which is already laid out K-major for it. Uses the SIMD kernel when it can.
template <class T>
inline void step_product(const T* d, int rows, int ldd, const T* w, int ldw, int K, int N, T* out) {
#if RNNKIT_PACKED_KERNELS
  if constexpr (std::is_same<T, float>::value) {
    if (N % 16 == 0) {
      packed_product(d, rows, ldd, w, ldw, 0, N, K, out, N);
      return;
    }
  }
#endif
  mat(out, rows, N).noalias() = cmat(d, rows, K, ldd) * cmat(w, K, N, ldw);
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
  const int want = (threads > 1 && flops >= 4e6) ? threads : 1;
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

// The unit blocks [first, last) of thread tid out of nt.
inline void block_range(int blocks, int tid, int nt, int& first, int& last) {
  first = int(int64_t(blocks) * tid / nt);
  last = int(int64_t(blocks) * (tid + 1) / nt);
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
