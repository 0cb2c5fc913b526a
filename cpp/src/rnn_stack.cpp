#include "rnnkit/rnn_stack.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "rnnkit/packing.hpp"
#include "rnnkit/thread_pool.hpp"

namespace rnnkit {
namespace {

template <class T>
struct StackWorkspace {
  Buffer<T> out[2];   // (rows, D*Hout) ping-pong layer outputs
  Buffer<T> dropped;  // (rows, D*Hout) a masked layer input when no cache keeps it
  Buffer<T> din[2];   // (rows, D*Hout) ping-pong gradients of layer inputs
  Buffer<T> dx_rev;   // (rows, in) the reverse direction's share of dx
  // With lengths: the caller's arrays in packed order (PackedOrder).
  PackedOrder order;  // an inference call's order (a training call keeps it in its cache)
  Buffer<T> x, y;     // (rows, I), (rows, D*Hout) the first layer's input, the last one's output
  Buffer<T> masks;    // (L-1, rows, D*Hout) dropout scales
  Buffer<T> h_masks;  // (L*D, G, B, Hout) recurrent dropout scales in packed order
  Buffer<T> x_masks;  // (D, G, B, I) per-gate input dropout scales in packed order
  Buffer<T> s0[2], s1[2];  // (L*D, B, Hout), (L*D, B, H) h and c: initial, final (or grads)
};

template <class T>
StackWorkspace<T>& stack_workspace() {
  thread_local StackWorkspace<T> ws;
  return ws;
}

// A stream step's scratch: the stepped rows' states gathered from their slots, and the outputs
// of the layers below the last.
template <class T>
struct StepWorkspace {
  Buffer<T> h, c;     // (n, Hout), (n, H)
  Buffer<T> out[2];   // (n, Hout) ping-pong layer outputs
};

template <class T>
StepWorkspace<T>& step_workspace() {
  thread_local StepWorkspace<T> ws;
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

// dst (rows, w) = the rows of src (T, B, w) that run, in packed order.
template <class T>
void pack_rows(const SeqShape& q, const PackedOrder& p, const T* src, int64_t w, T* dst) {
  for (int t = 0; t < q.T; ++t)
    for (int j = 0, n = q.active(t); j < n; ++j)
      std::memcpy(dst + q.row(t, j) * w, src + (int64_t(t) * q.B + p.order[j]) * w, w * sizeof(T));
}

// dst (T, B, w) = src (rows, w) back in the caller's order, zero past each sequence's end.
template <class T>
void unpack_rows(const SeqShape& q, const PackedOrder& p, const T* src, int64_t w, T* dst) {
  for (int t = 0; t < q.T; ++t)
    for (int j = 0, n = q.active(t); j < q.B; ++j) {
      T* d = dst + (int64_t(t) * q.B + p.order[j]) * w;
      if (j < n)
        std::memcpy(d, src + q.row(t, j) * w, w * sizeof(T));
      else
        std::memset(static_cast<void*>(d), 0, w * sizeof(T));
    }
}

// Per-sequence states (n, B, w): into packed order (in = true) or back to the caller's.
template <class T>
void permute_states(const PackedOrder& p, bool in, int64_t n, int B, const T* src, int64_t w, T* dst) {
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < B; ++j) {
      const int64_t a = (i * B + j) * w, b = (i * B + p.order[j]) * w;
      std::memcpy(dst + (in ? a : b), src + (in ? b : a), w * sizeof(T));
    }
}

// Guards every Stack's frozen_ (see Stack::load_frozen). Held only to copy or swap a
// shared_ptr, never while waiting for anything else, so fork()'s prepare handler gets it soon.
pthread_mutex_t g_frozen_mutex = PTHREAD_MUTEX_INITIALIZER;

void lock_frozen() { pthread_mutex_lock(&g_frozen_mutex); }
void unlock_frozen() { pthread_mutex_unlock(&g_frozen_mutex); }

// Registered once at load: the forking thread holds the mutex across fork(), so the child's
// copy is unlocked (by the child's only thread, which is the one that locked it).
const bool g_frozen_atfork = [] {
  pthread_atfork(&lock_frozen, &unlock_frozen, &unlock_frozen);
  return true;
}();

}  // namespace

template <class T>
std::shared_ptr<const typename Stack<T>::Packs> Stack<T>::load_frozen() const {
  (void)g_frozen_atfork;
  lock_frozen();
  std::shared_ptr<const Packs> p = frozen_;
  unlock_frozen();
  return p;
}

template <class T>
void Stack<T>::store_frozen(std::shared_ptr<const Packs> p) const {
  lock_frozen();
  frozen_.swap(p);
  unlock_frozen();
  // p now holds the previous packs: released here, outside the lock
}

SeqShape PackedOrder::build(int T, int B, const int32_t* caller_lengths) {
  order.resize(B);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return caller_lengths[a] > caller_lengths[b]; });
  lengths.resize(B);
  sorted = true;
  for (int j = 0; j < B; ++j) {
    lengths[j] = caller_lengths[order[j]];
    sorted = sorted && order[j] == j;
  }
  offsets.resize(size_t(T) + 1);
  offsets[0] = 0;
  for (int t = 0, n = B; t < T; ++t) {
    while (n > 0 && lengths[n - 1] <= t) --n;  // sequences still running at step t
    offsets[t + 1] = offsets[t] + n;
  }
  return shape(T, B);
}

template <class T>
Stack<T>::Stack(const StackSpec& spec, std::vector<DirWeights<T>> weights)
    : spec_(spec), w_(std::move(weights)) {}

template <class T>
void Stack<T>::pack_into(Packs& p, const Kernels& kernels, bool with_ih, bool bf16, bool snapshot) const {
  const CellSpec& s = spec_.cell;
  const int G = s.gates(), H = s.hidden_size, Ho = s.out_size();
  const size_t n = w_.size();
  p.kernels = &kernels;
  p.has_hh = p.has_bf16 = p.has_ih_bf16 = false;
  p.has_ih = with_ih;
  if constexpr (std::is_same<T, float>::value) {
    if (kernels.packed_f32) {
      p.has_hh = true;
      p.has_bf16 = bf16;
      p.hh.resize(n);
      for (size_t ld = 0; ld < n; ++ld)
        pack_recurrent(w_[ld].w_hh, G, H, Ho, p.hh[ld].reserve(packed_recurrent_size(G, H, Ho)));
      if (bf16) {
        const Bf16Layout layout = kernels.bf16_layout;
        p.bf16.resize(n);
        for (size_t ld = 0; ld < n; ++ld)
          pack_recurrent_bf16(w_[ld].w_hh, G, H, Ho, layout,
                              p.bf16[ld].reserve(packed_recurrent_size_bf16(G, H, Ho, layout)));
        // kernels with a bfloat16 input projection take w_ih in bfloat16 too
        p.has_ih_bf16 = with_ih && kernels.bf16_input > 0;
        if (p.has_ih_bf16) {
          p.ih_bf16.resize(n);
          for (size_t ld = 0; ld < n; ++ld) {
            const int I = spec_.layer(int(ld) / spec_.num_dirs).input_size;
            pack_recurrent_bf16(w_[ld].w_ih, G, H, I, layout,
                                p.ih_bf16[ld].reserve(packed_recurrent_size_bf16(G, H, I, layout)));
          }
        }
      }
    }
  }
  if (with_ih) {
    p.ih.resize(n);
    for (size_t ld = 0; ld < n; ++ld) {
      const int I = spec_.layer(int(ld) / spec_.num_dirs).input_size;
      pack_recurrent(w_[ld].w_ih, G, H, I, p.ih[ld].reserve(packed_recurrent_size(G, H, I)));
    }
  }
  // A snapshot always packs w_ih (with_ih), so the kernels never read w_ih itself.
  p.has_own = snapshot && with_ih;
  if (p.has_own) {
    p.own.resize(n);
    for (size_t ld = 0; ld < n; ++ld) {
      const DirWeights<T>& w = w_[ld];
      const int64_t GH = int64_t(G) * H;
      const int64_t sizes[5] = {w.b_ih ? GH : 0, w.b_hh ? GH : 0, w.w_hr ? int64_t(Ho) * H : 0,
                                w.peep ? 3 * int64_t(H) : 0, p.has_hh ? 0 : GH * Ho};
      const T* src[5] = {w.b_ih, w.b_hh, w.w_hr, w.peep, w.w_hh};
      int64_t total = 0;
      for (int64_t m : sizes) total += m;
      T* dst = p.own[ld].reserve(std::size_t(total));
      for (int i = 0; i < 5; ++i) {
        if (sizes[i]) std::memcpy(dst, src[i], std::size_t(sizes[i]) * sizeof(T));
        dst += sizes[i];
      }
    }
  }
}

template <class T>
DirWeights<T> Stack<T>::weights(int ld, const Packs* p) const {
  DirWeights<T> w = w_[ld];
  if (p) {
    if (p->has_own) {  // the snapshot's copies, in pack_into's order
      const T* q = p->own[ld].data();
      const int64_t GH = int64_t(spec_.cell.gates()) * spec_.cell.hidden_size;
      auto take = [&](const T*& slot, int64_t m) {
        if (slot) {
          slot = q;
          q += m;
        }
      };
      take(w.b_ih, GH);
      take(w.b_hh, GH);
      take(w.w_hr, int64_t(spec_.cell.out_size()) * spec_.cell.hidden_size);
      take(w.peep, 3 * int64_t(spec_.cell.hidden_size));
      if (!p->has_hh) w.w_hh = q;
      w.w_ih = nullptr;  // packed: never read
    }
    if (p->has_hh) w.packed_hh = p->hh[ld].data();
    if (p->has_ih) w.packed_ih = p->ih[ld].data();
    if (p->has_bf16) w.packed_hh_bf16 = p->bf16[ld].data();
    if (p->has_ih_bf16) w.packed_ih_bf16 = p->ih_bf16[ld].data();
  }
  return w;
}

template <class T>
bool Stack<T>::freeze(bool bf16) const {
  return freeze_for(active_kernels(), bf16);
}

// Frozen packs always hold w_ih, for every dtype and instruction set: the input projection then
// sums each row in one order whatever the number of rows (see input_projection), which is what
// makes a stream's steps equal one sequence call. w_hh is packed where the kernels take it.
template <class T>
bool Stack<T>::freeze_for(const Kernels& kernels, bool bf16) const {
  auto packs = std::make_shared<Packs>();
  packs->want_bf16 = bf16;
  pack_into(*packs, kernels, true, bf16, true);
  const bool packed = packs->has_hh;
  store_frozen(std::move(packs));
  return packed;
}

template <class T>
void Stack<T>::thaw() const {
  store_frozen(nullptr);
}

template <class T>
std::shared_ptr<const typename Stack<T>::Packs> Stack<T>::frozen_packs(const Kernels& kernels) const {
  std::shared_ptr<const Packs> frozen = load_frozen();
  if (frozen && frozen->kernels != &kernels) {
    // The instruction set changed since the packs were made (set_isa): repack for the new
    // kernels, whose bfloat16 layout may differ.
    freeze_for(kernels, frozen->want_bf16);
    frozen = load_frozen();
  }
  return frozen;
}

template <class T>
void Stack<T>::forward(const T* x, SeqShape seq, const T* h0, const T* c0, const StackDropout<T>& drop,
                       T* y, T* hn, T* cn, StackCache<T>* cache) const {
  const int L = spec_.num_layers, D = spec_.num_dirs, LD = L * D;
  const int Ho = spec_.cell.out_size(), H = spec_.cell.hidden_size, B = seq.B, I = spec_.cell.input_size;
  const int64_t width = int64_t(D) * Ho;
  const bool lstm = spec_.cell.kind == CellKind::LSTM;
  const int gates = spec_.cell.gates();
  const int64_t per_mask = int64_t(gates) * B * Ho;  // one layer-direction's h_masks
  const int64_t per_xmask = int64_t(gates) * B * I;  // one direction's x_masks
  const T* masks = drop.between;
  const Kernels& kernels = active_kernels();  // read once: set_isa may run concurrently
  const KernelTable<T>& k = kernels.table<T>();
  StackWorkspace<T>& ws = stack_workspace<T>();

  // With lengths, the layers run on the batch in packed-sequence order (PackedOrder), where
  // every step holds only the sequences still running.
  if (seq.lengths && std::all_of(seq.lengths, seq.lengths + B, [&](int32_t n) { return n == seq.T; }))
    seq.lengths = nullptr;
  const PackedOrder* po = nullptr;
  if (seq.lengths) {
    PackedOrder& order = cache ? cache->packed : ws.order;
    seq = order.build(seq.T, B, seq.lengths);
    po = &order;
  }
  const int64_t TB = seq.rows(), n0 = TB * I;
  const bool permute = po && !po->sorted;  // states change order too
  if (cache) cache->inputs.resize(L);
  if (po) {
    T* xp = cache ? cache->inputs[0].reserve(n0) : ws.x.reserve(n0);  // a training call keeps it
    pack_rows(seq, *po, x, I, xp);
    x = xp;
    if (masks) {
      const int64_t per = int64_t(seq.T) * B * width;
      T* mp = ws.masks.reserve((L - 1) * TB * width);
      for (int l = 0; l + 1 < L; ++l) pack_rows(seq, *po, masks + l * per, width, mp + l * TB * width);
      masks = mp;
    }
    if (permute && h0) {
      T* p = ws.s0[0].reserve(int64_t(LD) * B * Ho);
      permute_states(*po, true, LD, B, h0, Ho, p);
      h0 = p;
    }
    if (permute && c0) {
      T* p = ws.s1[0].reserve(int64_t(LD) * B * H);
      permute_states(*po, true, LD, B, c0, H, p);
      c0 = p;
    }
  }
  // The per-gate masks (blocks of B rows of w), in the rows' packed order, and kept in the
  // cache for backward when training; as given otherwise.
  auto gate_masks = [&](const T* m, int64_t blocks, int64_t w, Buffer<T>* kept, Buffer<T>& scratch) -> const T* {
    if (!m || (!kept && !permute)) return m;
    T* p = (kept ? *kept : scratch).reserve(blocks * B * w);
    if (permute)
      permute_states(*po, true, blocks, B, m, w, p);
    else
      std::memcpy(p, m, blocks * B * w * sizeof(T));
    return p;
  };
  const T* h_masks = gate_masks(drop.h, LD * gates, Ho, cache ? &cache->h_masks : nullptr, ws.h_masks);
  const T* x_masks = gate_masks(drop.x, D * gates, I, cache ? &cache->x_masks : nullptr, ws.x_masks);
  if (cache) {
    cache->has_h_masks = h_masks != nullptr;
    cache->has_x_masks = x_masks != nullptr;
  }
  T* const y_caller = y;
  T* const hn_caller = hn;
  T* const cn_caller = cn;
  if (po) y = ws.y.reserve(TB * width);
  if (permute) {
    hn = ws.s0[1].reserve(int64_t(LD) * B * Ho);
    if (lstm) cn = ws.s1[1].reserve(int64_t(LD) * B * H);
  }

  if (cache) {
    cache->owner = this;
    cache->steps = seq.T;
    cache->batch = seq.B;
    cache->has_lengths = po != nullptr;
    cache->masks.resize(masks ? L - 1 : 0);
    cache->dirs.resize(size_t(L) * D);
    if (!po) std::memcpy(cache->inputs[0].reserve(n0), x, n0 * sizeof(T));
  }

  // Packed weights: the frozen ones, or (training, float) packed for this call when the time
  // loop is long enough to repay it.
  std::shared_ptr<const Packs> frozen = frozen_packs(kernels);
  const Packs* packs = frozen.get();
  if (!packs && std::is_same<T, float>::value && kernels.packed_f32 && seq.T >= 4) {
    // W_ih too when its product over all steps is large enough to repay packing it
    thread_local Packs per_call;  // reused: its buffers keep their memory
    pack_into(per_call, kernels, int64_t(seq.T) * seq.B >= 256, false);
    packs = &per_call;
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
      a.w = weights(ld, packs);
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
      a.h_mask = h_masks ? h_masks + ld * per_mask : nullptr;
      a.x_mask = x_masks && l == 0 ? x_masks + d * per_xmask : nullptr;
      a.threads = dir_threads;
      k.forward(a);
    });
    in = out;
  }
  if (po) unpack_rows(seq, *po, y, width, y_caller);
  if (permute) {
    permute_states(*po, false, LD, B, hn, Ho, hn_caller);
    if (lstm) permute_states(*po, false, LD, B, cn, H, cn_caller);
  }
}

template <class T>
void Stack<T>::step(const T* x, int n, const int64_t* rows, int64_t N, T* h, T* c, T* y) const {
  const int L = spec_.num_layers, Ho = spec_.cell.out_size(), H = spec_.cell.hidden_size;
  const bool lstm = spec_.cell.kind == CellKind::LSTM;
  if (spec_.num_dirs != 1 || spec_.reverse)
    throw std::invalid_argument("[stream] a stack that reads time backwards (bidirectional or reverse) cannot stream");
  const Kernels& kernels = active_kernels();
  const KernelTable<T>& k = kernels.table<T>();
  std::shared_ptr<const Packs> packs = frozen_packs(kernels);
  if (!packs) throw std::logic_error("[stream] the module is in training mode; streams run in inference mode");
  StepWorkspace<T>& ws = step_workspace<T>();
  const int threads = get_num_threads();
  const T* in = x;
  for (int l = 0; l < L; ++l) {
    T* hl = h + int64_t(l) * N * Ho;  // (N, Hout) this layer's slots
    T* cl = lstm ? c + int64_t(l) * N * H : nullptr;
    T* hr = hl;  // (n, Hout) the stepped rows' states
    T* cr = cl;
    if (rows) {
      hr = ws.h.reserve(int64_t(n) * Ho);
      for (int i = 0; i < n; ++i) std::memcpy(hr + int64_t(i) * Ho, hl + rows[i] * Ho, Ho * sizeof(T));
      if (lstm) {
        cr = ws.c.reserve(int64_t(n) * H);
        for (int i = 0; i < n; ++i) std::memcpy(cr + int64_t(i) * H, cl + rows[i] * H, H * sizeof(T));
      }
    }
    T* out = l == L - 1 ? y : ws.out[l % 2].reserve(int64_t(n) * Ho);
    // One step of forward(): reads the states, writes them back (they may alias).
    ForwardArgs<T> a;
    a.spec = spec_.layer(l);
    a.w = weights(l, packs.get());
    a.seq = SeqShape{1, n, nullptr};
    a.x = in;
    a.y = out;
    a.ldy = Ho;
    a.h0 = hr;
    a.c0 = cr;
    a.hn = hr;
    a.cn = cr;
    a.threads = threads;
    k.forward(a);
    if (rows) {
      for (int i = 0; i < n; ++i) std::memcpy(hl + rows[i] * Ho, hr + int64_t(i) * Ho, Ho * sizeof(T));
      if (lstm)
        for (int i = 0; i < n; ++i) std::memcpy(cl + rows[i] * H, cr + int64_t(i) * H, H * sizeof(T));
    }
    in = out;
  }
}

template <class T>
void Stack<T>::backward(const StackCache<T>& cache, const T* dy, const T* dhn, const T* dcn, T* dx,
                        T* dh0, T* dc0, const std::vector<DirGrads<T>>& grads) const {
  const int L = spec_.num_layers, D = spec_.num_dirs, LD = L * D;
  const int Ho = spec_.cell.out_size(), H = spec_.cell.hidden_size, B = cache.batch;
  const int64_t width = int64_t(D) * Ho;
  const bool lstm = spec_.cell.kind == CellKind::LSTM;
  const KernelTable<T>& k = active_kernels().table<T>();
  StackWorkspace<T>& ws = stack_workspace<T>();
  const PackedOrder* po = cache.has_lengths ? &cache.packed : nullptr;
  const SeqShape seq = po ? po->shape(cache.steps, B) : SeqShape{cache.steps, B};
  const int64_t TB = seq.rows();
  const int threads = get_num_threads();
  const int dir_threads = (D == 2 && threads >= 2) ? std::max(1, threads / 2) : threads;

  // With lengths, the gradients go into the forward's packed order and back (see forward).
  const bool permute = po && !po->sorted;
  if (po) {
    T* p = ws.y.reserve(TB * width);
    pack_rows(seq, *po, dy, width, p);
    dy = p;
  }
  if (permute && dhn) {
    T* p = ws.s0[0].reserve(int64_t(LD) * B * Ho);
    permute_states(*po, true, LD, B, dhn, Ho, p);
    dhn = p;
  }
  if (permute && dcn) {
    T* p = ws.s1[0].reserve(int64_t(LD) * B * H);
    permute_states(*po, true, LD, B, dcn, H, p);
    dcn = p;
  }
  T* const dx_caller = dx;
  T* const dh0_caller = dh0;
  T* const dc0_caller = dc0;
  if (po && dx) dx = ws.x.reserve(TB * spec_.cell.input_size);
  if (permute) {
    dh0 = ws.s0[1].reserve(int64_t(LD) * B * Ho);
    if (lstm) dc0 = ws.s1[1].reserve(int64_t(LD) * B * H);
  }

  const T* dcur = dy;  // gradient of layer l's output, (rows, D*Hout)
  for (int l = L - 1; l >= 0; --l) {
    const CellSpec s = spec_.layer(l);
    const int64_t nin = TB * s.input_size;
    // dx null: the caller does not need the first layer's input gradient (nor its GEMM)
    T* din = (l == 0) ? dx : ws.din[l % 2].reserve(nin);
    if (din) std::memset(static_cast<void*>(din), 0, nin * sizeof(T));
    // The reverse direction adds into its own buffer, summed afterwards, so that the result
    // does not depend on whether the directions ran concurrently.
    T* din_rev = D == 2 && din ? ws.dx_rev.zeros(nin) : din;
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
      a.h_mask = cache.has_h_masks ? cache.h_masks.data() + ld * int64_t(s.gates()) * B * Ho : nullptr;
      a.x_mask = cache.has_x_masks && l == 0 ? cache.x_masks.data() + d * int64_t(s.gates()) * B * s.input_size : nullptr;
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
  if (po && dx) unpack_rows(seq, *po, dx, spec_.cell.input_size, dx_caller);
  if (permute) {
    permute_states(*po, false, LD, B, dh0, Ho, dh0_caller);
    if (lstm) permute_states(*po, false, LD, B, dc0, H, dc0_caller);
  }
}

template class Stack<float>;
template class Stack<double>;

}  // namespace rnnkit
