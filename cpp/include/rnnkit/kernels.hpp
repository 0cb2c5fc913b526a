// The interface between the stack driver and the per-ISA kernels: argument bundles for one
// layer-direction's forward and backward, the training cache, and the dispatch table.
#pragma once

#include <cstdint>

#include "rnnkit/buffer.hpp"
#include "rnnkit/packing.hpp"
#include "rnnkit/spec.hpp"

namespace rnnkit {

// What a training-mode forward keeps for backward, for one layer-direction.
// Rows are indexed t*B + b (time-major), whatever the direction.
template <class T>
struct DirCache {
  Buffer<T> gates;   // (T*B, G*H) gate values after their activations
  Buffer<T> h_prev;  // (T*B, Hout) hidden state entering step t
  Buffer<T> c_prev;  // LSTM (T*B, H) cell state entering step t
  Buffer<T> c;       // LSTM (T*B, H) cell state leaving step t
  Buffer<T> m;       // LSTM with projection (T*B, H): o * act(c) before W_hr
  Buffer<T> aux;     // GRU (T*B, H): U_n h + b_hn (reset_after) or r * h_prev (reset_before)
  Buffer<T> pre;     // (T*B, G*H) gate pre-activations before clip, when spec.caches_pre()
};

template <class T>
struct ForwardArgs {
  CellSpec spec;
  DirWeights<T> w;
  SeqShape seq;
  bool reverse = false;
  const T* x = nullptr;  // (T, B, I) dense, time-major
  T* y = nullptr;        // (T, B, ldy); this direction writes Hout columns starting at y
  int64_t ldy = 0;
  const T* h0 = nullptr;  // (B, Hout) or null for zeros
  const T* c0 = nullptr;  // LSTM (B, H) or null for zeros
  T* hn = nullptr;        // (B, Hout)
  T* cn = nullptr;        // LSTM (B, H)
  DirCache<T>* cache = nullptr;  // filled in training mode, null for inference
  // Recurrent dropout, or null: (G, B, Hout), gate q's product U_q h reads h * h_mask[q] (each
  // scale 0 or 1/(1 - rate), fixed over the sequence, as Keras's per-gate masks). The state h
  // itself, and every other use of it, stays unmasked. The time loop then runs on one thread.
  const T* h_mask = nullptr;
  // Per-gate input dropout, or null: (G, B, I), gate q's input projection reads x * x_mask[q]
  // (Keras's implementation=1, which its cells run whenever recurrent_dropout is set).
  const T* x_mask = nullptr;
  int threads = 1;               // at most this many threads may share the time loop
};

template <class T>
struct BackwardArgs {
  CellSpec spec;
  DirWeights<T> w;
  DirGrads<T> g;  // accumulated (+=)
  SeqShape seq;
  bool reverse = false;
  const T* x = nullptr;  // (T, B, I) the input the forward saw
  const DirCache<T>* cache = nullptr;
  const T* dy = nullptr;  // (T, B, ldy) gradient of this direction's outputs, at its offset
  int64_t ldy = 0;
  const T* dhn = nullptr;  // (B, Hout) or null for zeros
  const T* dcn = nullptr;  // LSTM (B, H) or null for zeros
  T* dx = nullptr;         // (T, B, I) accumulated (+=), or null: not wanted (no dx GEMM)
  T* dh0 = nullptr;        // (B, Hout) written
  T* dc0 = nullptr;        // LSTM (B, H) written
  const T* h_mask = nullptr;  // the forward's ForwardArgs::h_mask
  const T* x_mask = nullptr;  // the forward's ForwardArgs::x_mask
  int threads = 1;         // threads for the whole-sequence GEMMs
};

// out (M, N) = op(a) * op(b), or += it when accumulate: the dense products of the layers around
// the recurrent ones (Dense forward, its dW and dx), so that they run on the core's threads
// instead of a BLAS pool that would compete with them. op(a) is a (M, K) row-major with row
// stride lda, or, with trans_a, the transpose of a stored (K, M); likewise op(b) (K, N).
template <class T>
struct MatmulArgs {
  const T* a = nullptr;
  int64_t lda = 0;
  bool trans_a = false;
  const T* b = nullptr;
  int64_t ldb = 0;
  bool trans_b = false;
  T* out = nullptr;
  int64_t ldo = 0;
  int64_t M = 0, N = 0, K = 0;
  bool accumulate = false;
  int threads = 1;
};

// One optimizer step of one parameter, in place, as optimizers.py defines it (each operation
// in its order, rounded to T, so that the result equals numpy's element for element):
//   SGD     (s0 = momentum or null)
//   Adam    (s0 = m, s1 = v, s2 = v_hat with amsgrad or null)
//   RMSprop (s0 = velocity, s1 = momentum or null, s2 = average_gradient or null)
// decay multiplies p first (decoupled weight decay) unless it is 1. The scalars are the
// Python side's doubles; each is rounded to T once, as numpy rounds a Python float.
enum class UpdateRule { SGD, Adam, RMSprop };
template <class T>
struct UpdateArgs {
  UpdateRule rule = UpdateRule::SGD;
  T* p = nullptr;
  const T* g = nullptr;
  int64_t n = 0;
  T *s0 = nullptr, *s1 = nullptr, *s2 = nullptr;
  double lr = 0, decay = 1;
  double one_minus_b1 = 0, one_minus_b2 = 0, alpha = 0;  // Adam
  double rho = 0, one_minus_rho = 0;                     // RMSprop
  double momentum = 0, eps = 0;
  bool nesterov = false;
};

template <class T>
struct KernelTable {
  void (*forward)(const ForwardArgs<T>&);
  void (*backward)(const BackwardArgs<T>&);
  void (*matmul)(const MatmulArgs<T>&);
  void (*update)(const UpdateArgs<T>&);
};

struct Kernels {
  const char* isa;
  bool packed_f32;  // the float kernels use DirWeights::packed_hh when given
  Bf16Layout bf16_layout;  // how DirWeights::packed_hh_bf16 must be laid out for them
  // The float kernels stream packed_hh_bf16 instead of packed_hh for batches of at most this
  // many rows: where halving the bytes beats the cost of widening (or of VDPBF16PS).
  int bf16_max_rows;
  // True when the bfloat16 products round h to bfloat16 too (VDPBF16PS multiplies pairs of
  // bfloat16); false when the weights are widened to float and h stays float32.
  bool bf16_rounds_h;
  // Whether several rows' bfloat16 products run on AMX tiles (else on VDPBF16PS or in float).
  bool bf16_tiles;
  // How the input projection of bfloat16 weights sees x: 0 in float32 (the float packs), 1
  // rounded to bfloat16 (VDPBF16PS and AMX tiles), as torch's bfloat16 modules round it. With 1
  // the stack packs w_ih in bfloat16 too (DirWeights::packed_ih_bf16).
  int bf16_input;
  KernelTable<float> f32;
  KernelTable<double> f64;
  void (*activate_f32)(const ActSpec& f, const float* in, float* out, int n);  // the kernels' own
  template <class T>
  const KernelTable<T>& table() const;
};
template <>
inline const KernelTable<float>& Kernels::table<float>() const { return f32; }
template <>
inline const KernelTable<double>& Kernels::table<double>() const { return f64; }

// dispatch.cpp: the kernels chosen at import (or forced by RNNKIT_ISA / set_isa).
const Kernels& active_kernels();

}  // namespace rnnkit
