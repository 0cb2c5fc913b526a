// A stack of recurrent layers, one or two directions each: the unit the Python modules call.
// It runs the per-direction kernels layer by layer, applies dropout between layers, and keeps
// what backward needs in a StackCache.
#pragma once

#include <memory>
#include <vector>

#include "rnnkit/kernels.hpp"

namespace rnnkit {

struct StackSpec {
  CellSpec cell;  // cell.input_size is layer 0's input size
  int num_layers = 1;
  int num_dirs = 1;
  // One direction run from each sequence's last step to its first (ONNX direction="reverse"),
  // outputs in the original time order; only with num_dirs == 1.
  bool reverse = false;

  // Layer l's spec: layers above the first read the concatenated directions of the one below.
  CellSpec layer(int l) const {
    CellSpec s = cell;
    if (l > 0) s.input_size = num_dirs * cell.out_size();
    return s;
  }
};

// A batch with lengths in packed-sequence order (SeqShape): the caller's sequences sorted by
// length, longest first (a stable sort, so that equal lengths keep their order), and the
// first row of every step. The stack packs the caller's padded (T, B, width) arrays into
// (rows, width) in this order on the way in and unpacks them on the way out.
struct PackedOrder {
  std::vector<int32_t> order;    // (B) order[j]: the caller's sequence at packed position j
  std::vector<int32_t> lengths;  // (B) its length, non-increasing
  std::vector<int64_t> offsets;  // (T + 1) first row of each step
  bool sorted = true;            // order is the identity

  // lengths (B) in 1..T, the caller's order. Returns the packed shape.
  SeqShape build(int T, int B, const int32_t* caller_lengths);
  SeqShape shape(int T, int B) const { return {T, B, lengths.data(), offsets.data()}; }
};

// What a training forward drops, each null for nothing; every scale is 0 or 1/(1 - rate).
template <class T>
struct StackDropout {
  const T* between = nullptr;  // (L-1, T, B, D*Hout) on the inputs of layers 1..L-1
  const T* x = nullptr;        // (D, G, B, I) per gate on layer 0's input (ForwardArgs::x_mask)
  const T* h = nullptr;        // (L*D, G, B, Hout) per gate on h in the recurrent products
};

template <class T>
struct StackCache {
  const void* owner = nullptr;  // the Stack that made it
  int steps = 0, batch = 0;
  bool has_lengths = false;         // rows are in packed order (below), else (T*B) time-major
  PackedOrder packed;
  std::vector<Buffer<T>> inputs;    // inputs[l]: (rows, in_l) layer l's input after dropout
  std::vector<Buffer<T>> masks;     // masks[l-1]: (rows, D*Hout) dropout scale before layer l
  Buffer<T> h_masks;                // StackDropout::h in packed order, if any
  Buffer<T> x_masks;                // StackDropout::x in packed order, if any
  bool has_h_masks = false, has_x_masks = false;
  std::vector<DirCache<T>> dirs;    // [l*D + d]
};

template <class T>
class Stack {
 public:
  Stack(const StackSpec& spec, std::vector<DirWeights<T>> weights);

  const StackSpec& spec() const { return spec_; }

  // Inference fast path: repack the recurrent weights once (float only) and use the packs
  // until thaw(). The packs are a snapshot: they hold copies of every weight the frozen kernels
  // read, so the caller may change the weight arrays and freeze() again while other threads run
  // forward() or step(); each such call uses the snapshot current when it started (the old
  // weights or the new ones, never a mix). Safe against concurrent forward calls.
  // bf16: store the packs in bfloat16 (weights rounded to nearest even), read at half the
  // bytes and widened to float in the kernels. Returns whether packs are in use (the
  // kernels of the active instruction set take them).
  // Const because a forward call repacks (atomically) when the instruction set has changed.
  bool freeze(bool bf16 = false) const;
  void thaw() const;

  // x (T, B, I) time-major; h0 (L*D, B, Hout), c0 (L*D, B, H) or null; drop: the dropout masks
  // (StackDropout); y (T, B, D*Hout); hn, cn like h0, c0. cache non-null in training.
  // seq.lengths: the caller's (B) lengths in 1..T, any order, or null (seq.offsets unused):
  // steps past a sequence's length cost nothing and give zero outputs.
  void forward(const T* x, SeqShape seq, const T* h0, const T* c0, const StackDropout<T>& drop, T* y,
               T* hn, T* cn, StackCache<T>* cache) const;

  // dy like y; dhn, dcn like hn, cn or null; dx like x, or null when the caller does not need
  // it (the first layer's input GEMM is skipped); dh0, dc0 like h0, c0 (written).
  // Parameter gradients are accumulated into grads[l*D + d].
  void backward(const StackCache<T>& cache, const T* dy, const T* dhn, const T* dcn, T* dx,
                T* dh0, T* dc0, const std::vector<DirGrads<T>>& grads) const;

  // Whether freeze() is in effect (inference mode): what streams need.
  bool frozen() const { return load_frozen() != nullptr; }

  // Streams: one time step of every layer (forward-only stacks, frozen only) for n rows whose
  // states live outside the stack, in h (L, N, Hout) and, LSTM, c (L, N, H); rows (n) says which
  // of the N rows (null: rows 0..n-1 of N = n). x (n, I) the rows' inputs; y (n, Hout) the last
  // layer's new h. The states are updated in place. Runs the kernels of forward() for one step,
  // so T calls equal one forward() over the T steps bit for bit. Throws std::logic_error when
  // not frozen.
  void step(const T* x, int n, const int64_t* rows, int64_t N, T* h, T* c, T* y) const;

 private:
  struct Packs {
    const Kernels* kernels = nullptr;  // the kernels these packs were laid out for
    bool want_bf16 = false;
    // Per layer-direction; each kind in use only when its flag says so (a reused Packs keeps
    // the memory of kinds it no longer holds).
    std::vector<Buffer<float>> hh;            // packed w_hh
    std::vector<Buffer<T>> ih;                // packed w_ih
    std::vector<Buffer<std::uint16_t>> bf16;     // packed w_hh in bfloat16
    std::vector<Buffer<std::uint16_t>> ih_bf16;  // packed w_ih in bfloat16 (Kernels::bf16_input)
    // With a snapshot: per layer-direction, copies of the weights the kernels read unpacked:
    // b_ih, b_hh, w_hr, peep and (when w_hh is not packed) w_hh, in that order, those present.
    std::vector<Buffer<T>> own;
    bool has_hh = false, has_ih = false, has_bf16 = false, has_ih_bf16 = false, has_own = false;
  };
  // Packs w_hh (float, for kernels that take packs), w_ih (with_ih) and, bf16, a bfloat16 w_hh;
  // snapshot: copies the unpacked weights too (Packs::own), so that the packs stand alone.
  void pack_into(Packs& p, const Kernels& kernels, bool with_ih, bool bf16, bool snapshot = false) const;
  // frozen_ read and swapped under one process-wide mutex that fork() takes and releases
  // (pthread_atfork), so that a forked child never finds it held: unlike std::atomic_load on a
  // shared_ptr, whose hidden lock a thread of the parent may hold when another one forks.
  std::shared_ptr<const Packs> load_frozen() const;
  void store_frozen(std::shared_ptr<const Packs> p) const;
  // The frozen packs, repacked first if the instruction set changed since; null when not frozen.
  std::shared_ptr<const Packs> frozen_packs(const Kernels& kernels) const;
  bool freeze_for(const Kernels& kernels, bool bf16) const;
  // Layer-direction ld's weights with the packs of p (may be null).
  DirWeights<T> weights(int ld, const Packs* p) const;

  StackSpec spec_;
  std::vector<DirWeights<T>> w_;
  mutable std::shared_ptr<const Packs> frozen_;  // read and swapped with load/store_frozen
};

extern template class Stack<float>;
extern template class Stack<double>;

}  // namespace rnnkit
