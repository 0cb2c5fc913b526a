// Plain descriptions of a recurrent layer and of the buffers its kernels read and write.
// No Eigen, no Python: this header is shared by the kernels, the stack driver and the bindings.
#pragma once

#include <cstdint>

namespace rnnkit {

enum class CellKind : int { LSTM = 0, GRU = 1, RNN = 2 };

// Elementwise functions a cell may use (ONNX's list plus Linear), with their parameters:
//   Tanh, Relu, Sigmoid, Linear (identity), Softsign x/(1+|x|), Softplus log(1+e^x)
//   HardSigmoid     clip(alpha*x + beta, 0, 1)          (Keras 3: alpha 1/6, beta 1/2)
//   Affine          alpha*x + beta
//   LeakyRelu       x if x >= 0 else alpha*x
//   ThresholdedRelu x if x > alpha else 0
//   ScaledTanh      alpha*tanh(beta*x)
//   Elu             x if x >= 0 else alpha*(e^x - 1)
enum class Activation : int {
  Tanh = 0,
  Relu = 1,
  Sigmoid = 2,
  Linear = 3,
  HardSigmoid = 4,
  Affine = 5,
  LeakyRelu = 6,
  ThresholdedRelu = 7,
  ScaledTanh = 8,
  Elu = 9,
  Softsign = 10,
  Softplus = 11,
};

struct ActSpec {
  Activation f = Activation::Tanh;
  double alpha = 0, beta = 0;  // read only by the functions above that name them
};

// Functions whose derivative backward evaluates at their input (which it then needs): the
// others' derivatives follow from their output alone.
inline bool derivative_needs_input(const ActSpec& a) {
  return a.f == Activation::LeakyRelu || a.f == Activation::ThresholdedRelu || a.f == Activation::Elu;
}

// One layer-direction of a recurrent network.
struct CellSpec {
  CellKind kind = CellKind::LSTM;
  int input_size = 0;   // I: width of this layer's input rows
  int hidden_size = 0;  // H
  int proj_size = 0;    // P (LSTM only); 0 = no projection
  bool has_bias = true;
  bool reset_after = true;  // GRU: n = act(Wx + b_in + r*(Uh + b_hn)) if true, else act(Wx + U(r*h) + b)
  bool peephole = false;    // LSTM: ONNX peepholes p_i, p_f on c_prev and p_o on c_new
  bool input_forget = false;  // LSTM: ONNX's coupled gates, f = 1 - i (the f rows go unused)
  ActSpec act{Activation::Tanh};      // LSTM cell input g, GRU candidate n, RNN's h' (ONNX g / f)
  ActSpec ract{Activation::Sigmoid};  // gates i, f, o / r, z (ONNX f)
  ActSpec cact{Activation::Tanh};     // LSTM cell output: h' = o * cact(c') (ONNX h)
  // ONNX clip: every activation's input is clipped to [-clip, clip] first (the gate
  // pre-activations, not c' before cact, as ONNX Runtime does); 0 = no clipping.
  double clip = 0;

  int gates() const { return kind == CellKind::LSTM ? 4 : kind == CellKind::GRU ? 3 : 1; }
  int out_size() const { return proj_size > 0 ? proj_size : hidden_size; }  // Hout
  // Whether a training forward keeps the gate pre-activations (DirCache::pre) for backward:
  // clip's derivative and some activations' need them.
  bool caches_pre() const {
    return clip > 0 || derivative_needs_input(act) || (kind != CellKind::RNN && derivative_needs_input(ract));
  }
};

// Parameters of one layer-direction, PyTorch's layouts, row-major, gate rows i,f,g,o / r,z,n.
template <class T>
struct DirWeights {
  const T* w_ih = nullptr;  // (G*H, I)
  const T* w_hh = nullptr;  // (G*H, Hout)
  const T* b_ih = nullptr;  // (G*H) or null when !has_bias
  const T* b_hh = nullptr;  // (G*H) or null when !has_bias
  const T* w_hr = nullptr;  // (P, H) or null
  const T* peep = nullptr;  // (3H) order i, f, o, or null
  // w_hh repacked for the SIMD kernels (packing.hpp), float only; null: use w_hh as it is.
  const float* packed_hh = nullptr;
  // w_ih packed the same way (K = I) for the hoisted input projection, or null (then Eigen).
  // Every dtype and instruction set: with it, a row's projection is summed in one fixed order
  // whatever the number of rows, so a stream's steps equal one sequence call bit for bit.
  const T* packed_ih = nullptr;
  // The same in bfloat16 (weights that bfloat16 represents), in the active kernels'
  // Bf16Layout, or null. Given with packed_hh; the kernels stream it instead for batches of at
  // most Kernels::bf16_max_rows rows.
  const std::uint16_t* packed_hh_bf16 = nullptr;
  // w_ih packed the same way (K = I), for kernels with a bfloat16 input projection
  // (Kernels::bf16_input), or null: then it runs in float32 (packed_ih or Eigen).
  const std::uint16_t* packed_ih_bf16 = nullptr;
};

// Gradients of one layer-direction; same shapes as DirWeights. Kernels accumulate (+=).
template <class T>
struct DirGrads {
  T* w_ih = nullptr;
  T* w_hh = nullptr;
  T* b_ih = nullptr;
  T* b_hh = nullptr;
  T* w_hr = nullptr;
  T* peep = nullptr;
};

// A batch of sequences, time-major. Without lengths, step t of sequence b is row t*B + b of
// every (rows, width) buffer. With lengths, the batch is in packed-sequence order (as PyTorch's
// PackedSequence): sequences sorted longest first, lengths (B) non-increasing in 1..T, and step
// t holds only the active(t) sequences still running, rows offsets[t] .. offsets[t + 1]. The
// stack driver sorts and packs; the kernels see only this shape and never touch padding.
struct SeqShape {
  int T = 0;
  int B = 0;
  const int32_t* lengths = nullptr;  // (B) non-increasing, or null when all have length T
  const int64_t* offsets = nullptr;  // (T + 1) with lengths: first row of each step

  int length(int b) const { return lengths ? lengths[b] : T; }
  // Loop steps that do any work: the longest sequence's length.
  int steps() const { return lengths ? lengths[0] : T; }
  // Sequences running at step t: 0 .. active(t).
  int active(int t) const { return lengths ? int(offsets[t + 1] - offsets[t]) : B; }
  // The row of sequence b at time t (b < active(t)).
  int64_t row(int t, int b) const { return lengths ? offsets[t] + b : int64_t(t) * B + b; }
  // Rows of a whole-sequence buffer: T*B, or the packed sum of the lengths.
  int64_t rows() const { return lengths ? offsets[T] : int64_t(T) * B; }
};

}  // namespace rnnkit
