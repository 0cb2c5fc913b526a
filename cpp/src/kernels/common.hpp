// Shared pieces of the per-ISA kernels: Eigen map types, elementwise activations and their
// derivatives, the per-thread workspace, and the whole-sequence GEMM helpers.
// Included only by rnn_kernels.cpp, which defines RNNKIT_ISA_NS and renames Eigen's namespace.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/packed_product.hpp"
#include "kernels/vmath.hpp"
#include "rnnkit/kernels.hpp"
#include "rnnkit/packing.hpp"
#include "rnnkit/thread_pool.hpp"

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

// out = f(in), n elements; in may alias out. float's tanh and sigmoid are vmath's; the other
// transcendental functions go element by element through std::, so that a value's result never
// depends on where it sits in the call (and so on how threads split the units).
template <class T>
inline void activate(const ActSpec& a, const T* in, T* out, int n) {
  CArrMap<T> x(in, n);
  ArrMap<T> y(out, n);
  if constexpr (std::is_same<T, float>::value) {
    if (a.f == Activation::Tanh) return vmath::tanh_n(in, out, n);
    if (a.f == Activation::Sigmoid) return vmath::sigmoid_n(in, out, n);
  }
  const T al = T(a.alpha), be = T(a.beta);
  switch (a.f) {
    case Activation::Tanh: y = x.tanh(); break;
    case Activation::Sigmoid: y = x.logistic(); break;
    case Activation::Relu: y = x.max(T(0)); break;
    case Activation::Linear:
      if (in != out) y = x;
      break;
    case Activation::HardSigmoid: y = (x * al + be).max(T(0)).min(T(1)); break;
    case Activation::Affine: y = x * al + be; break;
    case Activation::LeakyRelu:
      for (int i = 0; i < n; ++i) out[i] = in[i] >= T(0) ? in[i] : al * in[i];
      break;
    case Activation::ThresholdedRelu:
      for (int i = 0; i < n; ++i) out[i] = in[i] > al ? in[i] : T(0);
      break;
    case Activation::ScaledTanh:
      y = x * be;
      if constexpr (std::is_same<T, float>::value)
        vmath::tanh_n(out, out, n);
      else
        for (int i = 0; i < n; ++i) out[i] = std::tanh(out[i]);
      y *= al;
      break;
    case Activation::Elu:
      for (int i = 0; i < n; ++i) out[i] = in[i] >= T(0) ? in[i] : al * std::expm1(in[i]);
      break;
    case Activation::Softsign: y = x / (T(1) + x.abs()); break;
    case Activation::Softplus:  // max(x, 0) + log(1 + e^-|x|): no overflow
      for (int i = 0; i < n; ++i) out[i] = std::max(in[i], T(0)) + std::log1p(std::exp(-std::fabs(in[i])));
      break;
  }
}

// v = clip(v, -c, c), n elements.
template <class T>
inline void clip_n(T* v, int n, double c) {
  ArrMap<T> x(v, n);
  x = x.max(T(-c)).min(T(c));
}

// d *= f'(pre), n elements, written in terms of the output y = f(pre), or of the input x =
// pre for the functions that need it (derivative_needs_input). With clip > 0, pre entered f
// clipped: x is then required, and d becomes 0 where |x| > clip. At a kink the derivative is
// the left one: relu 0 at 0, leaky_relu alpha at 0, thresholded_relu 0 at alpha, elu alpha at
// 0, hard_sigmoid 0 where alpha*x + beta is 0 or 1, clip 1 at +-clip.
template <class T>
inline void scale_by_derivative(const ActSpec& a, const T* y_, T* d_, int n, const T* x_ = nullptr,
                                double clip = 0) {
  CArrMap<T> y(y_, n);
  ArrMap<T> d(d_, n);
  const T al = T(a.alpha), be = T(a.beta);
  switch (a.f) {
    case Activation::Tanh: d *= T(1) - y.square(); break;
    case Activation::Sigmoid: d *= y * (T(1) - y); break;
    case Activation::Relu: d = (y > T(0)).select(d, T(0)); break;
    case Activation::Linear: break;
    case Activation::HardSigmoid: d = ((y > T(0)) && (y < T(1))).select(d * al, T(0)); break;
    case Activation::Affine: d *= al; break;
    case Activation::LeakyRelu:
      for (int i = 0; i < n; ++i) d_[i] = x_[i] > T(0) ? d_[i] : d_[i] * al;
      break;
    case Activation::ThresholdedRelu:
      for (int i = 0; i < n; ++i) d_[i] = x_[i] > al ? d_[i] : T(0);
      break;
    case Activation::ScaledTanh:  // alpha beta (1 - tanh(beta x)^2), tanh(beta x) = y / alpha
      if (al == T(0)) {
        d.setZero();
      } else {
        d *= al * be * (T(1) - (y / al).square());
      }
      break;
    case Activation::Elu:
      for (int i = 0; i < n; ++i) d_[i] = x_[i] > T(0) ? d_[i] : d_[i] * al * std::exp(x_[i]);
      break;
    case Activation::Softsign: d *= (T(1) - y.abs()).square(); break;  // 1 / (1 + |x|)^2
    case Activation::Softplus:  // sigmoid(x) = 1 - e^-y
      for (int i = 0; i < n; ++i) d_[i] *= -std::expm1(-y_[i]);
      break;
  }
  if (clip > 0) {
    const T c = T(clip);
    for (int i = 0; i < n; ++i)
      if (!(std::fabs(x_[i]) <= c)) d_[i] = T(0);
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
  Buffer<T> drop;    // recurrent dropout: (B, Hout) a masked h, (T*B, Hout) a masked h_prev
};

template <class T>
inline Workspace<T>& workspace() {
  thread_local Workspace<T> ws;
  return ws;
}

// n elements rounded up to a whole number of 64-byte lines.
template <class T>
constexpr int64_t aligned_size(int64_t n) {
  constexpr int64_t per_line = 64 / int64_t(sizeof(T));
  return (n + per_line - 1) / per_line * per_line;
}

template <class T>
inline void copy_or_zero(T* dst, const T* src, std::size_t n) {
  if (src)
    std::memcpy(dst, src, n * sizeof(T));
  else
    std::memset(static_cast<void*>(dst), 0, n * sizeof(T));
}

// The row that sequence b reads at loop step `step` (b < q.active(step)): time runs backwards
// from the sequence's own last step in the reverse direction.
inline int64_t step_row(const SeqShape& q, bool reverse, int step, int b) {
  return q.row(reverse ? q.length(b) - 1 - step : step, b);
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

// A team thread's batch rows [b0, b1) when a team splits a time loop by rows: every chunk
// but the last has an even size, so the rows that a multi-row kernel pairs up are the same
// whatever the team size (only the one-row kernel sums in another order).
struct ThreadRows {
  int b0, b1;
};
inline ThreadRows thread_rows(int B, int tid, int nt) {
  auto cut = [&](int t) { return t >= nt ? B : int(int64_t(B) * t / nt) & ~1; };
  return {cut(tid), cut(tid + 1)};
}

// The rows [b0, b1) a thread steps at each loop step: the first q.active(step) sequences run,
// split as thread_rows splits them when the team divides the batch (by_rows), else all of
// them. With lengths the running rows shrink as sequences end; a row team then re-splits them
// so that the threads stay balanced, and meets at a barrier first, since the rows (and their
// states) change hands. Call at every step, in order, on every team thread.
class ActiveRows {
 public:
  ActiveRows(const SeqShape& q, bool by_rows, int tid, int nt) : q_(q), by_rows_(by_rows), tid_(tid), nt_(nt) {}
  template <class Sync>
  ThreadRows at(int step, Sync&& sync) {
    const int n = q_.active(step);
    if (n != n_) {
      if (by_rows_ && n_ >= 0) sync();
      n_ = n;
      rows_ = by_rows_ ? thread_rows(n, tid_, nt_) : ThreadRows{0, n};
    }
    return rows_;
  }

 private:
  const SeqShape& q_;
  bool by_rows_;
  int tid_, nt_, n_ = -1;
  ThreadRows rows_{0, 0};
};

// Whether a time loop over B rows should be split by rows (independent sequences: no exchange
// between threads at all), and into how many: from 8 rows a thread, when the loop's products
// are worth a dispatch. Only on the packed path, whose kernels give a row the same result in
// any chunk (Eigen's GEMM may block a different row count differently).
inline int row_team(bool packed, int threads, int B, int T, int64_t step_macs) {
  if (!packed || threads < 2 || B < 16 || step_macs * T < 4'000'000) return 1;
  return std::min(threads, B / 8);
}

// The gate stride of input-projection rows: with w_ih packed, H rounded up to whole unit blocks
// (the packed kernels write 16 columns at a time), else H.
inline int gx_stride(int H, bool packed_ih) { return packed_ih ? unit_blocks(H) * kUnitBlock : H; }

// gx (TB, gates*gs) = x (TB, I) * w_ih^T + bias (gates*H): the input projection for every step
// at once; gate g of a row fills columns [g*gs, g*gs + H), gs = gx_stride(H, packed).
// With w_ih packed (pih: unit blocks of all gates, packing.hpp) the packed kernels compute it,
// each thread an even number of rows, every row summed in one order whatever the number of rows
// or threads: a stream's step (a few rows) then equals its step of a sequence call bit for bit.
// With bfloat16 weights packed too (pih16, float), the bfloat16 products take it, x rounded as
// Kernels::bf16_input says (their rows too are summed alike for any row count).
// Without packs (training mode), Eigen's GEMM over all rows.
template <class T>
inline void input_projection(const T* x, const T* w_ih, const T* bias, T* gx, Eigen::Index TB,
                             Eigen::Index I, int gates, int H, int threads, const T* pih,
                             const std::uint16_t* pih16 = nullptr) {
  const Eigen::Index GH = Eigen::Index(gates) * H;
  if (pih || pih16) {
    const int gs = gx_stride(H, true), ld = gates * gs, W = gates * kUnitBlock, blocks = unit_blocks(H);
    const double flops = 2.0 * TB * I * GH;
    const int nt = (threads > 1 && flops >= 2e7) ? threads : 1;
    auto body = [&](int tid, int n) {
      const auto [r0, r1] = thread_rows(int(TB), tid, n);
      // rows in chunks whose slice of x stays in L2 while every unit block passes over it
      const int chunk = std::max(2, int(std::min<int64_t>(240, (256 * 1024 / int(sizeof(T))) / std::max<Eigen::Index>(I, 1))) & ~1);
      for (int c0 = r0; c0 < r1; c0 += chunk) {
        const int c1 = std::min(r1, c0 + chunk);
        const T* xr = x + int64_t(c0) * I;
        T* out = gx + int64_t(c0) * ld;
        bool done = false;
#if RNNKIT_PACKED_KERNELS
        if constexpr (std::is_same<T, float>::value) {
          if (pih16)
            packed_blocks_product(xr, c1 - c0, int(I), pih16, std::size_t(bf16_rows(int(I), kBf16Layout)) * W, 0,
                                  blocks, W, 0, W, int(I), out, ld, gs);
          else
            for (int ub = 0; ub < blocks; ++ub)
              packed_product(xr, c1 - c0, int(I), pih + std::size_t(ub) * I * W, W, 0, W, int(I),
                             out + ub * kUnitBlock, ld, gs, false, true);
          done = true;
        }
#endif
        if (!done)
          for (int ub = 0; ub < blocks; ++ub)
            packed_product_generic(xr, c1 - c0, int(I), pih + std::size_t(ub) * I * W, W, 0, W, int(I),
                                   out + ub * kUnitBlock, ld, gs);
        if (bias)
          for (int r = c0; r < c1; ++r)
            for (int g = 0; g < gates; ++g)
              ArrMap<T>(gx + int64_t(r) * ld + g * gs, H) += CArrMap<T>(bias + int64_t(g) * H, H);
      }
    };
    run_team(nt, body);
    return;
  }
  (void)pih16;
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

// Recurrent dropout (ForwardArgs::h_mask, (G, B, Hout)): the recurrent products of gates
// [q0, q1) read h * mask_q. On Eigen, one thread: the kernels run a masked time loop unpacked.

// dst[row] = src[row] * m[b] for every row of the sequence, b the row's sequence; rows of
// width w (src may be dst), m (B, w).
template <class T>
inline void mask_rows(const T* src, int w, const T* m, const SeqShape& seq, T* dst) {
  for (int t = 0; t < seq.T; ++t)
    for (int b = 0; b < seq.active(t); ++b) {
      const int64_t row = seq.row(t, b);
      ArrMap<T>(dst + row * w, w) = CArrMap<T>(src + row * w, w) * CArrMap<T>(m + int64_t(b) * w, w);
    }
}

// acc[b, q*H + j] = (h[b] * mask_q[b]) . U[q*H + j] for rows b < rows, gates q in [q0, q1),
// units j < H; h (rows, Ho) dense, U (G*H, Ho), acc row stride lda, tmp (rows, Ho).
template <class T>
inline void masked_gate_product(const T* h, int rows, int Ho, const T* U, const T* mask, int B, int q0, int q1,
                                int H, T* acc, int lda, T* tmp) {
  const int64_t n = int64_t(rows) * Ho;
  for (int q = q0; q < q1; ++q) {
    ArrMap<T>(tmp, n) = CArrMap<T>(h, n) * CArrMap<T>(mask + int64_t(q) * B * Ho, n);
    mat(acc + q * H, rows, H, lda).noalias() = cmat(tmp, rows, Ho) * cmat(U + int64_t(q) * H * Ho, H, Ho).transpose();
  }
}

// out (rows, Ho) = sum over gates q in [q0, q1) of (d_q U_q) * mask_q: the gradient reaching h
// through the masked products; d_q at d + q*H with row stride ldd; tmp (rows, Ho).
template <class T>
inline void masked_gate_grad(const T* d, int rows, int ldd, const T* U, const T* mask, int B, int q0, int q1, int H,
                             int Ho, T* out, T* tmp) {
  const int64_t n = int64_t(rows) * Ho;
  ArrMap<T> o(out, n);
  o.setZero();
  for (int q = q0; q < q1; ++q) {
    mat(tmp, rows, Ho).noalias() = cmat(d + q * H, rows, H, ldd) * cmat(U + int64_t(q) * H * Ho, H, Ho);
    o += CArrMap<T>(tmp, n) * CArrMap<T>(mask + int64_t(q) * B * Ho, n);
  }
}

// gU rows [q*H, (q+1)*H) += d_q^T (h_prev * mask_q) for gates q in [q0, q1), over every row
// of the sequence (a row's mask is its sequence's); d (rows, ldd), h_prev (rows, Ho) as
// cached, tmp (rows, Ho).
template <class T>
inline void masked_weight_grad(int threads, T* gU, const T* d, int ldd, const T* h_prev, const T* mask,
                               const SeqShape& seq, int q0, int q1, int H, int Ho, T* tmp) {
  for (int q = q0; q < q1; ++q) {
    mask_rows(h_prev, Ho, mask + int64_t(q) * seq.B * Ho, seq, tmp);
    add_weight_grad(threads, gU + int64_t(q) * H * Ho, d + q * H, ldd, H, tmp, seq.rows(), Ho);
  }
}

// Per-gate input dropout (ForwardArgs::x_mask, (G, B, I)), on Eigen, one call per gate.
// gx[row, q*xs + j] = (x[row] * mask_q) . W[q*H + j] + bias[q*H + j] (bias may be null), for
// every row of the sequence, gate q's columns at q*xs (row stride ldx); tmp (rows, I).
template <class T>
inline void masked_input_projection(const T* x, const T* w_ih, const T* bias, T* gx, int ldx, int xs,
                                    const SeqShape& seq, int I, int gates, int H, const T* mask, T* tmp) {
  const int64_t TB = seq.rows();
  for (int q = 0; q < gates; ++q) {
    mask_rows(x, I, mask + int64_t(q) * seq.B * I, seq, tmp);
    auto Gq = mat(gx + q * xs, TB, H, ldx);
    Gq.noalias() = cmat(tmp, TB, I) * cmat(w_ih + int64_t(q) * H * I, H, I).transpose();
    if (bias) Gq.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(bias + int64_t(q) * H, H);
  }
}

// dx (rows, I) += sum over gates q of (d_q W_q) * mask_q: the input gradient through
// masked_input_projection; d (rows, ldd), gate q at q*H; tmp (rows, I).
template <class T>
inline void masked_input_grad(T* dx, const T* d, int ldd, const T* w_ih, const SeqShape& seq, int I, int gates, int H,
                              const T* mask, T* tmp) {
  const int64_t TB = seq.rows();
  for (int q = 0; q < gates; ++q) {
    mat(tmp, TB, I).noalias() = cmat(d + q * H, TB, H, ldd) * cmat(w_ih + int64_t(q) * H * I, H, I);
    mask_rows(tmp, I, mask + int64_t(q) * seq.B * I, seq, tmp);
    ArrMap<T>(dx, TB * I) += CArrMap<T>(tmp, TB * I);
  }
}

// The whole-sequence gradients of a cell's input side from its gate gradients dG (rows,
// gates*H): dW_ih, and dx when wanted, through the per-gate input masks when the forward had
// them (BackwardArgs::x_mask). tmp: scratch.
template <class T>
inline void input_side_grads(const BackwardArgs<T>& a, const T* dG, int gates, Buffer<T>& tmp) {
  const int H = a.spec.hidden_size, I = a.spec.input_size, G = gates * H;
  const int64_t TB = a.seq.rows();
  if (a.x_mask)
    masked_weight_grad(a.threads, a.g.w_ih, dG, G, a.x, a.x_mask, a.seq, 0, gates, H, I, tmp.reserve(TB * I));
  else
    add_weight_grad(a.threads, a.g.w_ih, dG, G, G, a.x, TB, I);
  if (a.dx && a.x_mask)
    masked_input_grad(a.dx, dG, G, a.w.w_ih, a.seq, I, gates, H, a.x_mask, tmp.reserve(TB * I));
  else if (a.dx)
    add_input_grad(a.threads, a.dx, dG, a.w.w_ih, TB, G, I);
}

// dW_hh's rows of gates [0, gates) += their gradients (dG, row stride ldg) times the cached
// h_prev (rows, Hout), through the per-gate recurrent masks when present (BackwardArgs::h_mask).
template <class T>
inline void recurrent_weight_grad(const BackwardArgs<T>& a, const T* dG, int ldg, int gates, const T* h_prev,
                                  Buffer<T>& tmp) {
  const int H = a.spec.hidden_size, Ho = a.spec.out_size();
  const int64_t TB = a.seq.rows();
  if (a.h_mask)
    masked_weight_grad(a.threads, a.g.w_hh, dG, ldg, h_prev, a.h_mask, a.seq, 0, gates, H, Ho, tmp.reserve(TB * Ho));
  else
    add_weight_grad(a.threads, a.g.w_hh, dG, ldg, gates * H, h_prev, TB, Ho);
}

// Requests every cache line of [p, p + n) at once. After a barrier, the lines of h that the
// other team threads just wrote then arrive together instead of one miss at a time inside the
// product that reads them in order.
template <class T>
inline void prefetch_lines(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < n * int64_t(sizeof(T)); off += 64) __builtin_prefetch(c + off, 0, 3);
}

// Batch 1: the recurrent product h (K) * U in two k-segments, [0, ks) and [ks, K), summed as
// seg0 + seg1 for any team size, so results do not depend on it. Floating-point addition
// commutes, so in a team of two (where each thread owns one segment's units of h) a thread
// multiplies the half of h it wrote itself first and only then waits for the other thread's
// half: the exchange hides behind half of the product. After the first block of its own half
// it starts fetching the other thread's half and flag, which that thread has most likely
// written by then, so that the wait finds them in cache. Larger teams wait for everyone first.
// block(ub, k0, k1, add) multiplies h[k0:k1] into unit block ub of [first, last) (add: onto
// the sum of the other segment).
template <class T, class F>
inline void segmented_row_product(int tid, int nt, int step, int ks, int K, const T* h, int first,
                                  int last, StepFlags& flags, F&& block) {
  const bool overlap = nt == 2;
  if (nt > 2)
    for (int t = 0; t < nt; ++t)
      if (t != tid) flags.wait(t, step);
  const int lo[2] = {0, ks}, hi[2] = {ks, K};
  const int own = overlap ? tid : 0;
  bool done = false;
  for (int i = 0; i < 2; ++i) {
    const int sg = own ^ i;
    if (hi[sg] <= lo[sg]) continue;
    if (i == 1 && overlap) flags.wait(1 - tid, step);
    for (int ub = first; ub < last; ++ub) {
      block(ub, lo[sg], hi[sg], done);
      if (overlap && i == 0 && ub == first) {
        prefetch_lines(h + lo[own ^ 1], hi[own ^ 1] - lo[own ^ 1]);
        flags.prefetch(1 - tid);
      }
    }
    done = true;
  }
}

// Whether a time loop over few rows is worth splitting by hidden units, whose threads exchange
// h every step: when one row's recurrent weights, G*H x Hout multiply-adds, are large enough
// that halving each core's share of them beats the exchange. Measured on a 2-core Xeon VM
// (bench/run.py, tests of 1 vs 2 threads at batch 1): at 64K (LSTM H=128) two threads gained
// at most 10% and GRU H=128 (49K) lost 15-25%; at 256K (LSTM H=256) they gained 1.5x.
inline bool units_team_pays(int B, int64_t row_macs) {
  return row_macs * std::min(B, 4) >= 160'000 * (B == 1 ? 1 : 2);
}

// The size of a forward time loop's units team: a thread per unit block at most, and no more
// threads than a StepFlags has slots, since batch-1 teams exchange h through one.
inline int units_team(int threads, int blocks) {
  return std::min({threads, blocks, StepFlags::kMaxThreads});
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
