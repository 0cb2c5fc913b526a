#include "rnnkit/rnn_stack.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include "rnnkit/packing.hpp"
#include "rnnkit/thread_pool.hpp"

namespace rnnkit {
namespace {

template <class T>
struct StackWorkspace {
  Buffer<T> out[2];   // (T, B, D*Hout) ping-pong layer outputs
  Buffer<T> dropped;  // (T, B, D*Hout) a masked layer input when no cache keeps it
  Buffer<T> din[2];   // (T, B, D*Hout) ping-pong gradients of layer inputs
  Buffer<T> dx_rev;   // (T, B, in) the reverse direction's share of dx
  std::vector<Buffer<float>> packs;  // per-call packed recurrent weights when not frozen
};

template <class T>
StackWorkspace<T>& stack_workspace() {
  thread_local StackWorkspace<T> ws;
  return ws;
}

// Runs f(d) for each direction, concurrently when the pool has threads to spare.
template <class F>
void for_each_direction(int D, F&& f) {
  if (D == 1 || get_num_threads() < 2)
    for (int d = 0; d < D; ++d) f(d);
  else
    parallel_for(D, f);
}

}  // namespace

template <class T>
Stack<T>::Stack(const StackSpec& spec, std::vector<DirWeights<T>> weights)
    : spec_(spec), w_(std::move(weights)) {}

template <class T>
void Stack<T>::pack_into(std::vector<Buffer<float>>& packs, bool with_ih) const {
  if constexpr (std::is_same<T, float>::value) {
    const CellSpec& s = spec_.cell;
    packs.resize(w_.size());
    for (size_t ld = 0; ld < w_.size(); ++ld) {
      const std::size_t nhh = packed_recurrent_size(s.gates(), s.hidden_size, s.out_size());
      const int I = spec_.layer(int(ld) / spec_.num_dirs).input_size;
      const bool ih = with_ih && packs_input(s);
      float* p = packs[ld].reserve(nhh + (ih ? packed_recurrent_size(s.gates(), s.hidden_size, I) : 0));
      pack_recurrent(w_[ld].w_hh, s.gates(), s.hidden_size, s.out_size(), p);
      if (ih) pack_recurrent(w_[ld].w_ih, s.gates(), s.hidden_size, I, p + nhh);
    }
  }
}

template <class T>
bool Stack<T>::packs_input(const CellSpec& s) {
  return s.hidden_size % kUnitBlock == 0;  // gx rows have no padding between gates
}

template <class T>
bool Stack<T>::freeze(bool bf16) const {
  const Kernels& kernels = active_kernels();
  auto packs = std::make_shared<Packs>();
  packs->kernels = &kernels;
  packs->want_bf16 = bf16;
  if (!std::is_same<T, float>::value || !kernels.packed_f32) {
    // Nothing to pack for these kernels; remembered so that a later ISA change packs.
    std::atomic_store(&frozen_, std::shared_ptr<const Packs>(std::move(packs)));
    return false;
  }
  pack_into(packs->f32, true);  // the kernels take the bfloat16 packs only for few rows
  if (bf16) {
    if constexpr (std::is_same<T, float>::value) {
      const CellSpec& s = spec_.cell;
      packs->bf16.resize(w_.size());
      for (size_t ld = 0; ld < w_.size(); ++ld) {
        std::uint16_t* p =
            packs->bf16[ld].reserve(packed_recurrent_size_bf16(s.gates(), s.hidden_size, s.out_size()));
        pack_recurrent_bf16(w_[ld].w_hh, s.gates(), s.hidden_size, s.out_size(), kernels.bf16_layout, p);
      }
    }
  }
  std::atomic_store(&frozen_, std::shared_ptr<const Packs>(std::move(packs)));
  return true;
}

template <class T>
void Stack<T>::thaw() const {
  std::atomic_store(&frozen_, std::shared_ptr<const Packs>());
}

template <class T>
void Stack<T>::forward(const T* x, SeqShape seq, const T* h0, const T* c0, const T* masks, T* y,
                       T* hn, T* cn, StackCache<T>* cache) const {
  const int L = spec_.num_layers, D = spec_.num_dirs;
  const int Ho = spec_.cell.out_size(), H = spec_.cell.hidden_size, B = seq.B;
  const int64_t TB = int64_t(seq.T) * seq.B, width = int64_t(D) * Ho;
  const bool lstm = spec_.cell.kind == CellKind::LSTM;
  const Kernels& kernels = active_kernels();  // read once: set_isa may run concurrently
  const KernelTable<T>& k = kernels.table<T>();
  StackWorkspace<T>& ws = stack_workspace<T>();

  if (cache) {
    cache->owner = this;
    cache->steps = seq.T;
    cache->batch = seq.B;
    cache->lengths.assign(seq.lengths, seq.lengths ? seq.lengths + B : seq.lengths);
    cache->inputs.resize(L);
    cache->masks.resize(masks ? L - 1 : 0);
    cache->dirs.resize(size_t(L) * D);
    const int64_t n0 = TB * spec_.cell.input_size;
    std::memcpy(cache->inputs[0].reserve(n0), x, n0 * sizeof(T));
    if (seq.lengths) seq.lengths = cache->lengths.data();
  }

  // Packed recurrent weights: the frozen ones, or packed for this call when the time loop is
  // long enough to repay it.
  std::shared_ptr<const Packs> frozen = std::atomic_load(&frozen_);
  if (frozen && frozen->kernels != &kernels) {
    // The instruction set changed since the packs were made (set_isa): repack for the new
    // kernels, whose bfloat16 layout may differ.
    freeze(frozen->want_bf16);
    frozen = std::atomic_load(&frozen_);
  }
  const std::vector<Buffer<float>>* packs = nullptr;
  const std::vector<Buffer<std::uint16_t>>* packs16 = nullptr;
  if (std::is_same<T, float>::value && kernels.packed_f32) {
    if (frozen && frozen->kernels == &kernels && !frozen->f32.empty()) {
      packs = &frozen->f32;
      if (!frozen->bf16.empty()) packs16 = &frozen->bf16;
    } else if (seq.T >= 4) {
      // W_ih too when its product over all steps is large enough to repay packing it
      pack_into(ws.packs, int64_t(seq.T) * seq.B >= 256);
      packs = &ws.packs;
    }
  }
  const int threads = get_num_threads();
  const int dir_threads = (D == 2 && threads >= 2) ? std::max(1, threads / 2) : threads;

  const T* in = cache ? cache->inputs[0].data() : x;
  for (int l = 0; l < L; ++l) {
    const CellSpec s = spec_.layer(l);
    if (l > 0 && masks) {
      // Dropout on the layer's input: in * mask, where mask holds 0 or 1/(1-p).
      const T* mk = masks + (l - 1) * TB * width;
      T* dropped = cache ? cache->inputs[l].reserve(TB * width) : ws.dropped.reserve(TB * width);
      for (int64_t i = 0; i < TB * width; ++i) dropped[i] = in[i] * mk[i];
      if (cache) std::memcpy(cache->masks[l - 1].reserve(TB * width), mk, TB * width * sizeof(T));
      in = dropped;
    }
    // Without dropout a training forward writes each layer's output straight into the cache
    // as the next layer's input.
    T* out = (l == L - 1)        ? y
             : (cache && !masks) ? cache->inputs[l + 1].reserve(TB * width)
                                 : ws.out[l % 2].reserve(TB * width);
    for_each_direction(D, [&](int d) {
      const int ld = l * D + d;
      ForwardArgs<T> a;
      a.spec = s;
      a.w = w_[ld];
      a.seq = seq;
      a.reverse = d == 1 || spec_.reverse;
      a.x = in;
      a.y = out + int64_t(d) * Ho;
      a.ldy = width;
      a.h0 = h0 ? h0 + int64_t(ld) * B * Ho : nullptr;
      a.c0 = (lstm && c0) ? c0 + int64_t(ld) * B * H : nullptr;
      a.hn = hn + int64_t(ld) * B * Ho;
      a.cn = lstm ? cn + int64_t(ld) * B * H : nullptr;
      a.cache = cache ? &cache->dirs[ld] : nullptr;
      a.threads = dir_threads;
      if (packs) {
        const Buffer<float>& pk = (*packs)[ld];
        const std::size_t nhh = packed_recurrent_size(s.gates(), s.hidden_size, s.out_size());
        a.w.packed_hh = pk.data();
        if (pk.size() > nhh) a.w.packed_ih = pk.data() + nhh;
      }
      if (packs16) a.w.packed_hh_bf16 = (*packs16)[ld].data();
      k.forward(a);
    });
    in = out;
  }
}

template <class T>
void Stack<T>::backward(const StackCache<T>& cache, const T* dy, const T* dhn, const T* dcn, T* dx,
                        T* dh0, T* dc0, const std::vector<DirGrads<T>>& grads) const {
  const int L = spec_.num_layers, D = spec_.num_dirs;
  const int Ho = spec_.cell.out_size(), H = spec_.cell.hidden_size, B = cache.batch;
  const int64_t TB = int64_t(cache.steps) * cache.batch, width = int64_t(D) * Ho;
  const bool lstm = spec_.cell.kind == CellKind::LSTM;
  const KernelTable<T>& k = active_kernels().table<T>();
  StackWorkspace<T>& ws = stack_workspace<T>();
  SeqShape seq{cache.steps, cache.batch, cache.lengths.empty() ? nullptr : cache.lengths.data()};
  const int threads = get_num_threads();
  const int dir_threads = (D == 2 && threads >= 2) ? std::max(1, threads / 2) : threads;

  const T* dcur = dy;  // gradient of layer l's output, (T, B, D*Hout)
  for (int l = L - 1; l >= 0; --l) {
    const CellSpec s = spec_.layer(l);
    const int64_t nin = TB * s.input_size;
    T* din = (l == 0) ? dx : ws.din[l % 2].reserve(nin);
    std::memset(static_cast<void*>(din), 0, nin * sizeof(T));
    // The reverse direction adds into its own buffer, summed afterwards, so that the result
    // does not depend on whether the directions ran concurrently.
    T* din_rev = D == 2 ? ws.dx_rev.zeros(nin) : din;
    for_each_direction(D, [&](int d) {
      const int ld = l * D + d;
      BackwardArgs<T> a;
      a.spec = s;
      a.w = w_[ld];
      a.g = grads[ld];
      a.seq = seq;
      a.reverse = d == 1 || spec_.reverse;
      a.x = cache.inputs[l].data();
      a.cache = &cache.dirs[ld];
      a.dy = dcur + int64_t(d) * Ho;
      a.ldy = width;
      a.dhn = dhn ? dhn + int64_t(ld) * B * Ho : nullptr;
      a.dcn = (lstm && dcn) ? dcn + int64_t(ld) * B * H : nullptr;
      a.dx = d == 1 ? din_rev : din;
      a.dh0 = dh0 + int64_t(ld) * B * Ho;
      a.dc0 = lstm ? dc0 + int64_t(ld) * B * H : nullptr;
      a.threads = dir_threads;
      k.backward(a);
    });
    if (din_rev != din)
      for (int64_t i = 0; i < nin; ++i) din[i] += din_rev[i];
    if (l > 0 && !cache.masks.empty()) {
      const T* mk = cache.masks[l - 1].data();
      for (int64_t i = 0; i < nin; ++i) din[i] *= mk[i];
    }
    dcur = din;
  }
}

template class Stack<float>;
template class Stack<double>;

}  // namespace rnnkit
