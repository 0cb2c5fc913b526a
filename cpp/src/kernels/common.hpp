// Shared pieces of the per-ISA kernels: Eigen map types, elementwise activations and their
// derivatives, the per-thread workspace, and the whole-sequence GEMM helpers.
// Included only by rnn_kernels.cpp, which defines RNNKIT_ISA_NS and renames Eigen's namespace.
#pragma once

#include <Eigen/Core>
#include <cstring>

#include "rnnkit/kernels.hpp"

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

// gx (TB, GH) = x (TB, I) * w_ih^T + bias (GH): the input projection for every step at once.
template <class T>
inline void input_projection(const T* x, const T* w_ih, const T* bias, T* gx, Eigen::Index TB,
                             Eigen::Index I, Eigen::Index GH) {
  auto Gx = mat(gx, TB, GH);
  Gx.noalias() = cmat(x, TB, I) * cmat(w_ih, GH, I).transpose();
  if (bias) Gx.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(bias, GH);
}

// Output rows of steps past a sequence's length are zero (PyTorch packed-sequence semantics).
template <class T>
inline void zero_padding(const SeqShape& q, T* y, int64_t ldy, int width) {
  if (!q.lengths) return;
  for (int b = 0; b < q.B; ++b)
    for (int t = q.length(b); t < q.T; ++t)
      std::memset(static_cast<void*>(y + (int64_t(t) * q.B + b) * ldy), 0, width * sizeof(T));
}

// Column sums of a (rows, cols) matrix added into out (cols): bias gradients.
template <class T>
inline void add_colsum(const T* m, Eigen::Index rows, Eigen::Index cols, Eigen::Index ld, T* out) {
  if (!out) return;
  Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(out, cols) += cmat(m, rows, cols, ld).colwise().sum();
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
