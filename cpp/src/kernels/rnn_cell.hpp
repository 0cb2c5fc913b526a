// Plain (Elman) RNN forward and backward through time for one layer-direction, side by side.
//
//   h' = act(W x + b_ih + U h + b_hh)       torch.nn.RNN (tanh or relu), ONNX RNN (f = act)
//
// ONNX clip bounds act's argument to [-clip, clip]. One gate (G = 1): the packed products,
// teams and caches are those of the LSTM and GRU kernels with a single gate block.
#pragma once

#include <type_traits>

#include "kernels/common.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

// The update of units [u0, u0 + n) of one row: rec holds U h for those units, gx the row's
// input projection (H, biases included). Writes h' to hnew; k_pre (the row's cache of
// pre-activations before clipping, H) if given.
template <class T>
inline void rnn_pointwise(const CellSpec& s, int u0, int n, const T* rec, const T* gx, T* hnew, T* k_pre) {
  ArrMap<T> v(hnew + u0, n);
  v = CArrMap<T>(rec, n) + CArrMap<T>(gx + u0, n);
  if (k_pre) std::memcpy(k_pre + u0, v.data(), n * sizeof(T));
  if (s.clip > 0) clip_n(v.data(), n, s.clip);
  activate(s.act, v.data(), v.data(), n);
}

template <class T>
void rnn_forward(const ForwardArgs<T>& a) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, I = s.input_size;
  const int Tn = a.seq.steps(), B = a.seq.B;
  const int64_t TB = a.seq.rows();  // rows of x, y, gx and the cache (T*B, fewer with lengths)
  Workspace<T>& ws = workspace<T>();

  // Both biases fold into the hoisted projection.
  T* bias = nullptr;
  if (s.has_bias) {
    bias = ws.bias.reserve(H);
    for (int j = 0; j < H; ++j) bias[j] = a.w.b_ih[j] + a.w.b_hh[j];
  }
  const int ldx = gx_stride(H, (a.w.packed_ih || a.w.packed_ih_bf16) && !a.x_mask);  // masked: unpacked
  T* gx = ws.gx.reserve(TB * ldx);  // (rows, ldx): H, padded to whole unit blocks when packed
  if (a.x_mask)
    masked_input_projection(a.x, a.w.w_ih, bias, gx, ldx, ldx, a.seq, I, 1, H, a.x_mask, ws.drop.reserve(TB * I));
  else
    input_projection(a.x, a.w.w_ih, bias, gx, TB, I, 1, H, a.threads, a.w.packed_ih, a.w.packed_ih_bf16);

  // Two (B, H), the state before and after a step, each 64-byte aligned (see lstm_forward).
  const int64_t hstride = aligned_size<T>(int64_t(B) * H);
  T* hbuf = ws.h.reserve(2 * hstride);
  copy_or_zero(hbuf, a.h0, int64_t(B) * H);

  DirCache<T>* k = a.cache;
  if (k) {
    k->gates.reserve(TB * H);  // h' (the activation's output)
    k->h_prev.reserve(TB * H);
    if (s.caches_pre()) k->pre.reserve(TB * H);
  }
  T* pre = k && s.caches_pre() ? k->pre.data() : nullptr;  // (rows, H) or null
  auto row_of = [&](int step, int b) { return step_row(a.seq, a.reverse, step, b); };

  const float* p32 = nullptr;
  const std::uint16_t* p16 = nullptr;
  if constexpr (std::is_same<T, float>::value) {
    p32 = a.w.packed_hh;
    if (B <= kBf16MaxRows) p16 = a.w.packed_hh_bf16;
  }
  const bool packed = p32 != nullptr && !a.h_mask;  // a masked loop runs unpacked, on one thread
  T* drop = a.h_mask ? ws.drop.reserve(int64_t(B) * H) : nullptr;
  const int blocks = unit_blocks(H), W = kUnitBlock;
  // acc (B, Hp): each row's U h, H rounded up to whole unit blocks on the packed path.
  const int Hp = packed ? blocks * kUnitBlock : H, lda = Hp;
  T* acc = ws.acc.reserve(int64_t(B) * lda);
  // Teams as in lstm_forward: by rows from 16 rows, by units where a row's weights pay for
  // the per-step exchange.
  const int rteam = row_team(packed, a.threads, B, Tn, int64_t(B) * H * H);
  const int team = rteam > 1 ? rteam
                   : (packed && a.threads > 1 && H >= 128 && units_team_pays(B, int64_t(H) * H))
                       ? units_team(a.threads, blocks) : 1;
  const bool row1 = packed && B == 1;
  const int ks = row1 ? thread_units(H, 0, 2).n : H;
  Barrier barrier;
  StepFlags flags;
  // Rows [b0, b0 + nb) of h times h-columns [k0, k1) of unit block ub, into acc.
  auto block_product = [&](const T* h, int b0, int nb, int ub, int k0, int k1, bool add) {
    if constexpr (std::is_same<T, float>::value) {
      T* out = acc + int64_t(b0) * lda + ub * kUnitBlock;
      h += int64_t(b0) * H + k0;
      if (p16)
        packed_product(h, nb, H, p16 + (std::size_t(ub) * bf16_rows(H, kBf16Layout) + k0) * W, W, 0, W, k1 - k0,
                       out, lda, Hp, add);
      else
        packed_product(h, nb, H, p32 + (std::size_t(ub) * H + k0) * W, W, 0, W, k1 - k0, out, lda, Hp, add);
    }
  };
  // Rows [b0, b0 + nb) of h times unit blocks [first, last), every column of h, into acc.
  auto blocks_product = [&](const T* h, int b0, int nb, int first, int last) {
    if constexpr (std::is_same<T, float>::value) {
      T* out = acc + int64_t(b0) * lda;
      h += int64_t(b0) * H;
      if (p16)
        packed_blocks_product(h, nb, H, p16, std::size_t(bf16_rows(H, kBf16Layout)) * W, first, last, W, 0, W, H,
                              out, lda, Hp);
      else
        packed_blocks_product(h, nb, H, p32, std::size_t(H) * W, first, last, W, 0, W, H, out, lda, Hp);
    }
  };

  auto body = [&](int tid, int nt) {
    barrier.set_size(nt);
    const bool by_rows = nt > 1 && rteam > 1;
    const auto [first, last, u0, n] = by_rows ? ThreadUnits{0, blocks, 0, H} : thread_units(H, tid, nt);
    ActiveRows active(a.seq, by_rows, tid, nt);
    T* hcur = hbuf;
    T* hnext = hbuf + hstride;
    for (int step = 0; step < Tn; ++step) {
      const auto [b0, b1] = active.at(step, [&] { barrier.wait(); });  // this step's running rows
      if (row1) {
        segmented_row_product(tid, nt, step, ks, H, hcur, first, last, flags,
                              [&](int ub, int k0, int k1, bool add) { block_product(hcur, 0, 1, ub, k0, k1, add); });
      } else if (packed) {
        if (nt > 1 && !by_rows) prefetch_lines(hcur, int64_t(b1) * H);
        if (b1 > b0) blocks_product(hcur, b0, b1 - b0, first, last);
      } else if (a.h_mask) {
        masked_gate_product(hcur, b1, H, a.w.w_hh, a.h_mask, B, 0, 1, H, acc, lda, drop);
      } else {
        mat(acc, b1, H).noalias() = cmat(hcur, b1, H) * cmat(a.w.w_hh, H, H).transpose();
      }
      for (int b = b0; b < b1; ++b) {
        const int64_t row = row_of(step, b);
        T* hn = hnext + int64_t(b) * H;
        const T* hc = hcur + int64_t(b) * H;
        if (k) std::memcpy(k->h_prev.data() + row * H + u0, hc + u0, n * sizeof(T));
        rnn_pointwise(s, u0, n, acc + int64_t(b) * lda + u0, gx + row * ldx, hn, pre ? pre + row * H : nullptr);
        std::memcpy(a.y + row * a.ldy + u0, hn + u0, n * sizeof(T));
        if (k) std::memcpy(k->gates.data() + row * H + u0, hn + u0, n * sizeof(T));
      }
      if (row1) {
        if (nt > 1) flags.post(tid, step + 1);  // this thread's units of h for step + 1 are written
      } else if (!by_rows) {
        barrier.wait();
      }
      std::swap(hcur, hnext);
    }
  };
  run_team(team, body);

  // A sequence's last state is in the buffer its last step wrote: the steps alternate them.
  for (int b = 0; b < B; ++b)
    std::memcpy(a.hn + int64_t(b) * H, hbuf + (a.seq.length(b) % 2) * hstride + int64_t(b) * H, H * sizeof(T));
}

template <class T>
void rnn_backward(const BackwardArgs<T>& a) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size;
  const int Tn = a.seq.steps(), B = a.seq.B;
  const int64_t TB = a.seq.rows();  // rows of x, dy, dx and the cache (T*B, fewer with lengths)
  const DirCache<T>& k = *a.cache;
  const T* pre = s.caches_pre() ? k.pre.data() : nullptr;  // (rows, H) or null
  Workspace<T>& ws = workspace<T>();

  T* dG = ws.dgx.reserve(TB * H);  // (rows, H) pre-activation grads
  T* dh = ws.dh.reserve(int64_t(B) * H);       // (B, H) grad of the running h
  copy_or_zero(dh, a.dhn, int64_t(B) * H);
  // Two (B, H) step-gradient buffers, used alternately (see lstm_backward).
  T* dsteps = ws.dstep.reserve(2 * int64_t(B) * H);
  T* dprev = ws.dprev.reserve(int64_t(B) * H);  // (B, H) dstep U
  T* drop = a.h_mask ? ws.drop.reserve(int64_t(B) * H) : nullptr;

  const int blocks = H / kUnitBlock;
  // Teams as in lstm_backward.
  const bool rows_ok = std::is_same<T, float>::value && RNNKIT_PACKED_KERNELS && H % kUnitBlock == 0 && !a.h_mask;
  const int rteam = row_team(rows_ok, a.threads, B, Tn, int64_t(B) * H * H);
  const int team = rteam > 1 ? rteam
                   : (!a.h_mask && a.threads > 1 && H >= 128 && H % kUnitBlock == 0 &&
                      units_team_pays(B, int64_t(H) * H))
                       ? std::min(a.threads, blocks) : 1;
  Barrier barrier;
  auto row_of = [&](int step, int b) { return step_row(a.seq, a.reverse, step, b); };

  // By units: each thread owns units [u0, u0 + n) and the same columns of dstep U. By rows:
  // rows [b0, b1), every unit and column.
  auto body = [&](int tid, int nt) {
    barrier.set_size(nt);
    const bool by_rows = nt > 1 && rteam > 1;
    const auto [first, last, u0, n] = by_rows ? ThreadUnits{0, blocks, 0, H} : thread_units(H, tid, nt);
    ActiveRows active(a.seq, by_rows, tid, nt);
    (void)first;
    (void)last;
    for (int step = Tn - 1; step >= 0; --step) {
      const auto [b0, b1] = active.at(step, [&] { barrier.wait(); });  // this step's running rows
      T* dstep = dsteps + (step & 1) * int64_t(B) * H;
      for (int b = b0; b < b1; ++b) {
        const int64_t row = row_of(step, b);
        T* ds = dstep + int64_t(b) * H + u0;
        ArrMap<T>(ds, n) = CArrMap<T>(dh + int64_t(b) * H + u0, n) + CArrMap<T>(a.dy + row * a.ldy + u0, n);
        scale_by_derivative(s.act, k.gates.data() + row * H + u0, ds, n, pre ? pre + row * H + u0 : nullptr,
                            s.clip);
        std::memcpy(dG + row * H + u0, ds, n * sizeof(T));
      }
      if (!by_rows) barrier.wait();  // every unit's dstep is written
      // this thread's columns of dstep U (all of them for one thread or by rows), for its rows
      const int c0 = nt > 1 && !by_rows ? u0 : 0, nc = nt > 1 && !by_rows ? n : H;
      if (b1 > b0 && a.h_mask)
        masked_gate_grad(dstep, b1, H, a.w.w_hh, a.h_mask, B, 0, 1, H, H, dprev, drop);
      else if (b1 > b0)
        step_product(dstep + int64_t(b0) * H, b1 - b0, H, a.w.w_hh + c0, H, H, nc, dprev + int64_t(b0) * H + c0, H);
      for (int b = b0; b < b1; ++b) std::memcpy(dh + int64_t(b) * H + c0, dprev + int64_t(b) * H + c0, nc * sizeof(T));
    }
  };
  run_team(team, body);
  std::memcpy(a.dh0, dh, int64_t(B) * H * sizeof(T));

  // Weight gradients as whole-sequence GEMMs.
  input_side_grads(a, dG, 1, ws.drop);
  recurrent_weight_grad(a, dG, H, 1, k.h_prev.data(), ws.drop);
  add_colsum(dG, TB, H, H, a.g.b_ih);
  add_colsum(dG, TB, H, H, a.g.b_hh);
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
