// LSTM forward and backward through time for one layer-direction, side by side.
//
//   i = ract(W_i x + b_ii + U_i h + b_hi [+ p_i * c])     f = ract(... [+ p_f * c])
//   g = act(W_g x + b_ig + U_g h + b_hg)                 c' = f * c + i * g
//   o = ract(W_o x + b_io + U_o h + b_ho [+ p_o * c'])   m = o * cact(c')
//   h' = m, or h' = W_hr m with a projection.
// ONNX options: clip bounds every gate pre-activation (the arguments of ract and act, not c')
// to [-clip, clip]; input_forget replaces f by 1 - i (the f rows of W, U, b go unused).
#pragma once

#include <type_traits>

#include "kernels/common.hpp"
#include "kernels/tile_steps.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

// The pointwise update of units [u0, u0 + n) for one row. rec holds the recurrent
// pre-activations of gate i for those units, the other gates following at stride gs (H for a
// whole-row product, 16 for a packed block); gx is the row's input projection (biases
// included), gate q at gx + q*xs. Updates c in place, writes o * cact(c) to out, and fills the
// cache rows if given (k_pre: the gate pre-activations before clipping, when the spec keeps
// them).
// Whether the spec is the common LSTM, whose float gate pass runs fused (lstm_gates_fused):
// sigmoid gates, tanh cell input and output, no clip, peepholes or coupled gates.
inline bool lstm_fused_spec(const CellSpec& s) {
  return s.ract.f == Activation::Sigmoid && s.act.f == Activation::Tanh && s.cact.f == Activation::Tanh &&
         !(s.clip > 0) && !s.peephole && !s.input_forget;
}

// The vectors of lstm_gates_fused: R vectors of N units side by side, vector v's operands dr
// (rec), dg (gx) and dc (c, out and the caches) floats after vector v - 1's, so that the
// vectors may be a row's next units or the same units of the next rows. Each vector's gate pass
// is a long chain of dependent operations (five exps); R chains interleaved keep the vector
// units busy (R = 4 took 0.82-0.85x the time of one at a time on the AMX LSTM), and a vector
// computes exactly as alone. Gate q of rec at q*gs, of gx at q*xs, of k_gates at q*kgs.
template <class S, int R>
inline void lstm_gates_vecs(const float* rec, int dr, int gs, const float* gx, int dg, int xs, float* c, float* out,
                            int64_t dc, float* k_gates, int kgs, float* k_cprev, float* k_c) {
  using V = typename S::V;
  V i[R], f[R], z[R], og[R], cn[R];
  auto pre = [&](int v, int q) { return S::add(S::load(rec + v * dr + q * gs), S::load(gx + v * dg + q * xs)); };
  for (int v = 0; v < R; ++v) i[v] = vmath::sigmoid<S>(pre(v, 0));
  for (int v = 0; v < R; ++v) f[v] = vmath::sigmoid<S>(pre(v, 1));
  for (int v = 0; v < R; ++v) z[v] = vmath::tanh<S>(pre(v, 2));
  for (int v = 0; v < R; ++v) og[v] = vmath::sigmoid<S>(pre(v, 3));
  for (int v = 0; v < R; ++v) {
    float* cv = c + v * dc;
    const V cp = S::load(cv);
    cn[v] = S::fma(f[v], cp, S::mul(i[v], z[v]));
    S::store(cv, cn[v]);
    if (k_cprev) S::store(k_cprev + v * dc, cp);
  }
  for (int v = 0; v < R; ++v) {
    S::store(out + v * dc, S::mul(og[v], vmath::tanh<S>(cn[v])));
    if (k_gates) {
      float* kg = k_gates + v * dc;
      S::store(kg, i[v]);
      S::store(kg + kgs, f[v]);
      S::store(kg + 2 * kgs, z[v]);
      S::store(kg + 3 * kgs, og[v]);
    }
    if (k_c) S::store(k_c + v * dc, cn[v]);
  }
}

// lstm_pointwise for lstm_fused_spec in float: N units at a time through all four gates in
// registers (no pass over scratch per gate), four vectors side by side (lstm_gates_vecs), the
// last partial vector through the same code on padded copies, so a unit's result does not
// depend on where it sits (nor on a thread split). Pointers are at unit u0: gate q of rec at
// q*gs, of gx at q*xs; k_gates gate q at q*H.
template <class S>
inline void lstm_gates_fused(int n, const float* rec, int gs, const float* gx, int xs, float* c, float* out,
                             float* k_gates, int H, float* k_cprev, float* k_c) {
  constexpr int N = S::N;
  auto at = [](float* p, int u) { return p ? p + u : nullptr; };
  int u = 0;
  for (; u + 4 * N <= n; u += 4 * N)
    lstm_gates_vecs<S, 4>(rec + u, N, gs, gx + u, N, xs, c + u, out + u, N, at(k_gates, u), H, at(k_cprev, u),
                          at(k_c, u));
  for (; u + N <= n; u += N)
    lstm_gates_vecs<S, 1>(rec + u, N, gs, gx + u, N, xs, c + u, out + u, N, at(k_gates, u), H, at(k_cprev, u),
                          at(k_c, u));
  if (u < n) {
    const int m = n - u;
    float r[4 * N] = {}, g[4 * N] = {}, cc[N] = {}, o[N], kg[4 * N], kcp[N], kc[N];
    for (int q = 0; q < 4; ++q) {
      std::memcpy(r + q * N, rec + q * gs + u, m * sizeof(float));
      std::memcpy(g + q * N, gx + q * xs + u, m * sizeof(float));
    }
    std::memcpy(cc, c + u, m * sizeof(float));
    lstm_gates_vecs<S, 1>(r, N, N, g, N, N, cc, o, N, kg, N, kcp, kc);
    std::memcpy(c + u, cc, m * sizeof(float));
    std::memcpy(out + u, o, m * sizeof(float));
    if (k_gates)
      for (int q = 0; q < 4; ++q) std::memcpy(k_gates + q * H + u, kg + q * N, m * sizeof(float));
    if (k_cprev) std::memcpy(k_cprev + u, kcp, m * sizeof(float));
    if (k_c) std::memcpy(k_c + u, kc, m * sizeof(float));
  }
}

template <class T>
inline void lstm_pointwise(const CellSpec& s, const DirWeights<T>& w, int u0, int n, const T* rec,
                           int gs, const T* gx, int xs, T* c, T* out, T* scratch, T* k_gates,
                           T* k_cprev, T* k_c, T* k_pre) {
  const int H = s.hidden_size;
  if constexpr (std::is_same<T, float>::value) {
    if (!k_pre && lstm_fused_spec(s)) {
      lstm_gates_fused<vmath::Best>(n, rec, gs, gx + u0, xs, c + u0, out + u0, k_gates ? k_gates + u0 : nullptr, H,
                                    k_cprev ? k_cprev + u0 : nullptr, k_c ? k_c + u0 : nullptr);
      return;
    }
  }
  T* g = scratch;  // (4, n) pre-activations, then gate values
  T* tc = scratch + 4 * n;
  for (int q = 0; q < 4; ++q)
    ArrMap<T>(g + q * n, n) = CArrMap<T>(rec + q * gs, n) + CArrMap<T>(gx + q * xs + u0, n);
  ArrMap<T> gi(g, n), gf(g + n, n), gg(g + 2 * n, n), go(g + 3 * n, n), cv(c + u0, n);
  if (k_cprev) std::memcpy(k_cprev + u0, c + u0, n * sizeof(T));
  if (s.peephole) {
    gi += CArrMap<T>(w.peep + u0, n) * cv;
    if (!s.input_forget) gf += CArrMap<T>(w.peep + H + u0, n) * cv;
  }
  if (k_pre)
    for (int q = 0; q < 3; ++q) std::memcpy(k_pre + q * H + u0, g + q * n, n * sizeof(T));
  if (s.clip > 0) clip_n(g, 3 * n, s.clip);
  if (s.input_forget) {
    activate(s.ract, g, g, n);
    gf = T(1) - gi;
  } else {
    activate(s.ract, g, g, 2 * n);  // i, f
  }
  activate(s.act, g + 2 * n, g + 2 * n, n);
  cv = gf * cv + gi * gg;
  if (s.peephole) go += CArrMap<T>(w.peep + 2 * H + u0, n) * cv;
  if (k_pre) std::memcpy(k_pre + 3 * H + u0, g + 3 * n, n * sizeof(T));
  if (s.clip > 0) clip_n(g + 3 * n, n, s.clip);
  activate(s.ract, g + 3 * n, g + 3 * n, n);
  activate(s.cact, c + u0, tc, n);
  ArrMap<T>(out + u0, n) = go * CArrMap<T>(tc, n);
  if (k_gates)
    for (int q = 0; q < 4; ++q) std::memcpy(k_gates + q * H + u0, g + q * n, n * sizeof(T));
  if (k_c) std::memcpy(k_c + u0, c + u0, n * sizeof(T));
}

#if RNNKIT_AMX
// lstm_forward on the AMX tiles (tile_time_loop): the accumulators hold a unit block's four
// gates, x_t W^T and h U^T summed in the same tiles, two chunks at a time; chunk pairs are the
// outer loop over the span's rows, so their weights stay in L1 across the rows.
inline void lstm_forward_tiles(const ForwardArgs<float>& a) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, G = 4 * H;
  Workspace<float>& ws = workspace<float>();
  float* bias = ws.bias.reserve(G);  // both biases, or zeros: what the gate pass adds to the tiles' sums
  for (int j = 0; j < G; ++j) bias[j] = s.has_bias ? a.w.b_ih[j] + a.w.b_hh[j] : 0.0f;
  float* c = ws.c.reserve(int64_t(a.seq.B) * H);
  copy_or_zero(c, a.c0, int64_t(a.seq.B) * H);
  auto products = [](const std::uint16_t* xa, int Kx, const std::uint16_t* ha, int Kh, int rows,
                     const std::uint16_t* px, const std::uint16_t* ph, int W, float* acc) {
    for (int j = 0; j < 4; j += 2)
      for (int r = 0; r < rows; r += 32) {
        const std::uint16_t* xr = xa + std::size_t(r) * Kx;
        const std::uint16_t* hr = ha + std::size_t(r) * Kh;
        float* ar = acc + r * kTileAcc + j * kUnitBlock;
        const std::size_t cj = std::size_t(j) * 2 * kUnitBlock;  // chunk j in a pair row
        if (r + 16 < rows)
          tile_chunk_pair<true>(xr, Kx, px + cj, hr, Kh, ph + cj, W, ar, kTileAcc);
        else
          tile_chunk_pair<false>(xr, Kx, px + cj, hr, Kh, ph + cj, W, ar, kTileAcc);
      }
  };
  // the common LSTM with a whole vector of units: four rows side by side (lstm_gates_vecs)
  const bool rows4 = lstm_fused_spec(s);
  using S = vmath::Best;
  auto gate_pass = [&](int b, int rows, int u0, int n, const float* acc, const float*, float* hn, float* scratch) {
    int r = 0;
    if (rows4 && n == S::N) {
      const int64_t o = int64_t(b) * H + u0;
      for (; r + 4 <= rows; r += 4)
        lstm_gates_vecs<S, 4>(acc + r * kTileAcc, kTileAcc, kUnitBlock, bias + u0, 0, H, c + o + r * H,
                              hn + o + r * H, H, nullptr, 0, nullptr, nullptr);
    }
    for (; r < rows; ++r)
      lstm_pointwise<float>(s, a.w, u0, n, acc + r * kTileAcc, kUnitBlock, bias, H, c + int64_t(b + r) * H,
                            hn + int64_t(b + r) * H, scratch, nullptr, nullptr, nullptr, nullptr);
  };
  tile_time_loop(a, products, gate_pass);
  if (a.cn) std::memcpy(a.cn, c, int64_t(a.seq.B) * H * sizeof(float));
}
#endif  // RNNKIT_AMX

template <class T>
void lstm_forward(const ForwardArgs<T>& a) {
#if RNNKIT_AMX
  if constexpr (std::is_same<T, float>::value) {
    if (tile_loop_applies(a)) return lstm_forward_tiles(a);
  }
#endif
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, Ho = s.out_size(), I = s.input_size, G = 4 * H;
  const int Tn = a.seq.steps(), B = a.seq.B;
  const int64_t TB = a.seq.rows();  // rows of x, y, gx and the cache (T*B, fewer with lengths)
  const bool proj = s.proj_size > 0;
  Workspace<T>& ws = workspace<T>();

  // Both biases fold into the hoisted projection.
  T* bias = nullptr;
  if (s.has_bias) {
    bias = ws.bias.reserve(G);
    for (int j = 0; j < G; ++j) bias[j] = a.w.b_ih[j] + a.w.b_hh[j];
  }
  // a masked input (per-gate dropout) is projected unpacked, gate by gate
  const int xs = gx_stride(H, (a.w.packed_ih || a.w.packed_ih_bf16) && !a.x_mask), ldx = 4 * xs;
  T* gx = ws.gx.reserve(TB * ldx);  // (rows, 4*xs) gate q of a row at q*xs
  if (a.x_mask)
    masked_input_projection(a.x, a.w.w_ih, bias, gx, ldx, xs, a.seq, I, 4, H, a.x_mask, ws.drop.reserve(TB * I));
  else
    input_projection(a.x, a.w.w_ih, bias, gx, TB, I, 4, H, a.threads, a.w.packed_ih, a.w.packed_ih_bf16);

  // Two (B, Hout), the state before and after a step, each 64-byte aligned so that every step
  // sees the same alignments (and so a one-step call computes exactly as any step of a longer one).
  const int64_t hstride = aligned_size<T>(int64_t(B) * Ho);
  T* hbuf = ws.h.reserve(2 * hstride);
  T* c = ws.c.reserve(int64_t(B) * H);          // (B, H), updated in place
  copy_or_zero(hbuf, a.h0, int64_t(B) * Ho);
  copy_or_zero(c, a.c0, int64_t(B) * H);
  T* mb = proj ? ws.m.reserve(int64_t(B) * H) : nullptr;  // (B, H) o * act(c) before W_hr
  T* hp = proj ? ws.hp.reserve(int64_t(B) * Ho) : nullptr;

  DirCache<T>* k = a.cache;
  if (k) {
    k->gates.reserve(TB * G);
    k->h_prev.reserve(TB * Ho);
    k->c_prev.reserve(TB * H);
    k->c.reserve(TB * H);
    if (proj) k->m.reserve(TB * H);
    if (s.caches_pre()) k->pre.reserve(TB * G);
  }
  const bool keep_pre = k && s.caches_pre();
  auto row_of = [&](int step, int b) { return step_row(a.seq, a.reverse, step, b); };

  const float* p32 = nullptr;
  const std::uint16_t* p16 = nullptr;
  if constexpr (std::is_same<T, float>::value) {
    p32 = a.w.packed_hh;
    if (B <= kBf16MaxRows) p16 = a.w.packed_hh_bf16;
  }
  const bool packed = p32 != nullptr && !a.h_mask;  // a masked loop runs unpacked, on one thread
  T* drop = a.h_mask ? ws.drop.reserve(int64_t(B) * Ho) : nullptr;
  const int blocks = unit_blocks(H), W = 4 * kUnitBlock;
  // acc (B, 4*Hp): each row's recurrent pre-activations, gate-major with gate stride Hp
  // (H rounded up to whole unit blocks on the packed path). Shared by the team.
  const int Hp = packed ? blocks * kUnitBlock : H, lda = 4 * Hp;
  T* acc = ws.acc.reserve(int64_t(B) * lda);
  // A team shares the time loop by units when a row's weights are large enough to pay for the
  // per-step exchange (units_team_pays: batch 1 from H ~ 200), never for small H.
  // From 16 rows the team splits the batch instead (row_team): each thread runs its own
  // sequences through every unit, and nothing passes between threads inside the loop.
  const int rteam = proj ? 1 : row_team(packed, a.threads, B, Tn, int64_t(B) * G * Ho);
  const int team = rteam > 1 ? rteam
                   : (packed && !proj && a.threads > 1 && H >= 128 && units_team_pays(B, int64_t(G) * Ho))
                       ? units_team(a.threads, blocks) : 1;
  // Batch 1 in k-segments (segmented_row_product): the split is that of a team of two.
  const bool row1 = packed && B == 1;
  const int ks = row1 && !proj ? thread_units(H, 0, 2).n : Ho;
  Barrier barrier;  // teams with several rows meet here once per step
  StepFlags flags;  // batch-1 teams exchange h through these
  // Rows [b0, b0 + nb) of h [row stride Ho] times h-columns [k0, k1) of unit block ub, into acc.
  auto block_product = [&](const T* h, int b0, int nb, int ub, int k0, int k1, bool add) {
    if constexpr (std::is_same<T, float>::value) {
      T* out = acc + int64_t(b0) * lda + ub * kUnitBlock;
      h += int64_t(b0) * Ho + k0;
      if (p16)
        packed_product(h, nb, Ho, p16 + (std::size_t(ub) * bf16_rows(Ho, kBf16Layout) + k0) * W, W, 0, W, k1 - k0,
                       out, lda, Hp, add);
      else
        packed_product(h, nb, Ho, p32 + (std::size_t(ub) * Ho + k0) * W, W, 0, W, k1 - k0, out, lda, Hp, add);
    }
  };
  // Rows [b0, b0 + nb) of h times unit blocks [first, last), every column of h, into acc.
  auto blocks_product = [&](const T* h, int b0, int nb, int first, int last) {
    if constexpr (std::is_same<T, float>::value) {
      T* out = acc + int64_t(b0) * lda;
      h += int64_t(b0) * Ho;
      if (p16)
        packed_blocks_product(h, nb, Ho, p16, std::size_t(bf16_rows(Ho, kBf16Layout)) * W, first, last, W, 0, W,
                              Ho, out, lda, Hp);
      else
        packed_blocks_product(h, nb, Ho, p32, std::size_t(Ho) * W, first, last, W, 0, W, Ho, out, lda, Hp);
    }
  };

  auto body = [&](int tid, int nt) {
    barrier.set_size(nt);
    const bool by_rows = nt > 1 && rteam > 1;
    // this thread's units (all of them when splitting by rows) and rows (all when by units)
    const auto [first, last, u0, n] = by_rows ? ThreadUnits{0, blocks, 0, H} : thread_units(H, tid, nt);
    ActiveRows active(a.seq, by_rows, tid, nt);
    T* scratch = workspace<T>().tmp.reserve(5 * int64_t(n));
    T* hcur = hbuf;
    T* hnext = hbuf + hstride;
    for (int step = 0; step < Tn; ++step) {
      const auto [b0, b1] = active.at(step, [&] { barrier.wait(); });  // this step's running rows
      if (row1) {
        segmented_row_product(tid, nt, step, ks, Ho, hcur, first, last, flags,
                              [&](int ub, int k0, int k1, bool add) { block_product(hcur, 0, 1, ub, k0, k1, add); });
      } else if (packed) {
        if (nt > 1 && !by_rows) prefetch_lines(hcur, int64_t(b1) * Ho);
        if (b1 > b0) blocks_product(hcur, b0, b1 - b0, first, last);
      } else if (a.h_mask) {
        masked_gate_product(hcur, b1, Ho, a.w.w_hh, a.h_mask, B, 0, 4, H, acc, lda, drop);
      } else {
        mat(acc, b1, G).noalias() = cmat(hcur, b1, Ho) * cmat(a.w.w_hh, G, Ho).transpose();
      }
      for (int b = b0; b < b1; ++b) {
        const int64_t row = row_of(step, b);
        T* hn_row = hnext + int64_t(b) * Ho;
        const T* hc_row = hcur + int64_t(b) * Ho;
        if (k && !proj) std::memcpy(k->h_prev.data() + row * Ho + u0, hc_row + u0, n * sizeof(T));
        T* out = proj ? mb + int64_t(b) * H : hn_row;
        lstm_pointwise(s, a.w, u0, n, acc + int64_t(b) * lda + u0, Hp, gx + row * ldx, xs, c + int64_t(b) * H,
                       out, scratch, k ? k->gates.data() + row * G : nullptr,
                       k ? k->c_prev.data() + row * H : nullptr, k ? k->c.data() + row * H : nullptr,
                       keep_pre ? k->pre.data() + row * G : nullptr);
        if (!proj) std::memcpy(a.y + row * a.ldy + u0, out + u0, n * sizeof(T));
        if (k && proj) std::memcpy(k->m.data() + row * H + u0, out + u0, n * sizeof(T));
      }
      if (proj) {  // h = W_hr m for the rows that stepped (single-threaded: team is 1)
        mat(hp, b1, Ho).noalias() = cmat(mb, b1, H) * cmat(a.w.w_hr, Ho, H).transpose();
        for (int b = 0; b < b1; ++b) {
          const int64_t row = row_of(step, b);
          const T* src = hp + int64_t(b) * Ho;
          std::memcpy(hnext + int64_t(b) * Ho, src, Ho * sizeof(T));
          if (k) std::memcpy(k->h_prev.data() + row * Ho, hcur + int64_t(b) * Ho, Ho * sizeof(T));
          std::memcpy(a.y + row * a.ldy, src, Ho * sizeof(T));
        }
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
    std::memcpy(a.hn + int64_t(b) * Ho, hbuf + (a.seq.length(b) % 2) * hstride + int64_t(b) * Ho, Ho * sizeof(T));
  if (a.cn) std::memcpy(a.cn, c, int64_t(B) * H * sizeof(T));
}

template <class T>
void lstm_backward(const BackwardArgs<T>& a) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, Ho = s.out_size(), G = 4 * H;
  const int Tn = a.seq.steps(), B = a.seq.B;
  const int64_t TB = a.seq.rows();  // rows of x, dy, dx and the cache (T*B, fewer with lengths)
  const bool proj = s.proj_size > 0;
  const DirCache<T>& k = *a.cache;
  const bool keep_pre = s.caches_pre();  // the forward kept the gate pre-activations
  Workspace<T>& ws = workspace<T>();

  T* dG = ws.dgx.reserve(TB * G);                          // (rows, 4H) gate pre-activation grads
  T* dHP = proj ? ws.dhp_all.reserve(TB * Ho) : nullptr;  // (rows, P) projected-output grads
  T* dh = ws.dh.reserve(int64_t(B) * Ho);  // (B, Hout) grad of the running h
  T* dc = ws.dc.reserve(int64_t(B) * H);   // (B, H) grad of the running c
  copy_or_zero(dh, a.dhn, int64_t(B) * Ho);
  copy_or_zero(dc, a.dcn, int64_t(B) * H);
  // Two (B, 4H) step-gradient buffers, used alternately, so that a thread may start a step's
  // pointwise work while another still reads the previous step's buffer in its product.
  T* dsteps = ws.dstep.reserve(2 * int64_t(B) * G);
  T* dhb = proj ? ws.dhb.reserve(int64_t(B) * Ho) : nullptr;  // (B, P) total grad of projected h
  T* dm = proj ? ws.dm.reserve(int64_t(B) * H) : nullptr;     // (B, H) grad of o * act(c)
  T* dprev = ws.dprev.reserve(int64_t(B) * Ho);               // (B, Hout) dstep U
  T* drop = a.h_mask ? ws.drop.reserve(int64_t(B) * Ho) : nullptr;

  const int blocks = H / kUnitBlock;
  // From 16 rows, a team splits the batch (row_team): only where step_product runs the packed
  // kernels (float, whole chunks of 16) and no thread-shared peephole gradient is summed.
  // A masked loop (recurrent dropout) runs on one thread.
  const bool rows_ok = std::is_same<T, float>::value && RNNKIT_PACKED_KERNELS && !proj &&
                       !s.peephole && H % kUnitBlock == 0 && !a.h_mask;
  const int rteam = row_team(rows_ok, a.threads, B, Tn, int64_t(B) * G * Ho);
  const int team = rteam > 1 ? rteam
                   : (!proj && !a.h_mask && a.threads > 1 && H >= 128 && H % kUnitBlock == 0 &&
                      units_team_pays(B, int64_t(G) * Ho)) ? std::min(a.threads, blocks) : 1;
  Barrier barrier;
  auto row_of = [&](int step, int b) { return step_row(a.seq, a.reverse, step, b); };

  // By units: each thread owns units [u0, u0 + n): their pointwise gradients in every gate,
  // and the same columns of dstep U (Hout = H without a projection). By rows: rows [b0, b1),
  // every unit and column.
  auto body = [&](int tid, int nt) {
    barrier.set_size(nt);
    const bool by_rows = nt > 1 && rteam > 1;
    const auto [first, last, u0, n] = by_rows ? ThreadUnits{0, blocks, 0, H} : thread_units(H, tid, nt);
    ActiveRows active(a.seq, by_rows, tid, nt);
    (void)first;
    (void)last;
    T* scratch = workspace<T>().tmp.reserve(3 * int64_t(n));
    T* tc = scratch;         // act(c)
    T* t1 = scratch + n;     // scratch
    T* dmv = scratch + 2 * n;  // this row's gradient of o * act(c), units u0..
    for (int step = Tn - 1; step >= 0; --step) {
      const auto [b0, b1] = active.at(step, [&] { barrier.wait(); });  // this step's running rows
      T* dstep = dsteps + (step & 1) * int64_t(B) * G;
      if (proj) {  // team is 1: dm = (dh + dy) W_hr over whole rows first
        for (int b = 0; b < b1; ++b) {
          const int64_t row = row_of(step, b);
          T* d = dhb + int64_t(b) * Ho;
          ArrMap<T>(d, Ho) = CArrMap<T>(dh + int64_t(b) * Ho, Ho) + CArrMap<T>(a.dy + row * a.ldy, Ho);
          std::memcpy(dHP + row * Ho, d, Ho * sizeof(T));
        }
        mat(dm, b1, H).noalias() = cmat(dhb, b1, Ho) * cmat(a.w.w_hr, Ho, H);
      }
      for (int b = b0; b < b1; ++b) {
        const int64_t row = row_of(step, b);
        T* ds = dstep + int64_t(b) * G;
        if (proj)
          std::memcpy(dmv, dm + int64_t(b) * H + u0, n * sizeof(T));
        else
          ArrMap<T>(dmv, n) = CArrMap<T>(dh + int64_t(b) * Ho + u0, n) + CArrMap<T>(a.dy + row * a.ldy + u0, n);
        const T* gr = k.gates.data() + row * G + u0;
        CArrMap<T> gi(gr, n), gf(gr + H, n), gg(gr + 2 * H, n), go(gr + 3 * H, n);
        CArrMap<T> cnew(k.c.data() + row * H + u0, n), cprev(k.c_prev.data() + row * H + u0, n);
        CArrMap<T> dmb(dmv, n);
        ArrMap<T> di(ds + u0, n), df(ds + H + u0, n), dg(ds + 2 * H + u0, n), dO(ds + 3 * H + u0, n);
        ArrMap<T> dcb(dc + int64_t(b) * H + u0, n);
        ArrMap<T> tv(t1, n);

        // the pre-activations of gate q, units u0.. (null when the forward kept none)
        auto pre = [&](int q) { return keep_pre ? k.pre.data() + row * G + q * H + u0 : nullptr; };
        activate(s.cact, cnew.data(), tc, n);
        dO = dmb * CArrMap<T>(tc, n);
        scale_by_derivative(s.ract, go.data(), dO.data(), n, pre(3), s.clip);
        tv = dmb * go;
        scale_by_derivative(s.cact, tc, t1, n, cnew.data());
        dcb += tv;  // dc now holds the gradient of c' for this step
        if (s.peephole) {
          dcb += dO * CArrMap<T>(a.w.peep + 2 * H + u0, n);
          ArrMap<T>(a.g.peep + 2 * H + u0, n) += dO * cnew;
        }
        if (s.input_forget) {  // c' = (1 - i) c + i g: i takes f's share, f none
          di = dcb * (gg - cprev);
          df.setZero();
        } else {
          di = dcb * gg;
          df = dcb * cprev;
          scale_by_derivative(s.ract, gf.data(), df.data(), n, pre(1), s.clip);
        }
        dg = dcb * gi;
        scale_by_derivative(s.ract, gi.data(), di.data(), n, pre(0), s.clip);
        scale_by_derivative(s.act, gg.data(), dg.data(), n, pre(2), s.clip);
        dcb *= gf;  // gradient reaching c_prev
        if (s.peephole && s.input_forget) {
          dcb += di * CArrMap<T>(a.w.peep + u0, n);
          ArrMap<T>(a.g.peep + u0, n) += di * cprev;
        } else if (s.peephole) {
          dcb += di * CArrMap<T>(a.w.peep + u0, n) + df * CArrMap<T>(a.w.peep + H + u0, n);
          ArrMap<T>(a.g.peep + u0, n) += di * cprev;
          ArrMap<T>(a.g.peep + H + u0, n) += df * cprev;
        }
        for (int q = 0; q < 4; ++q) std::memcpy(dG + row * G + q * H + u0, ds + q * H + u0, n * sizeof(T));
      }
      if (!by_rows) barrier.wait();  // every unit's dstep is written
      // this thread's columns of dstep U (all of them for one thread or by rows), for its rows
      const int c0 = nt > 1 && !by_rows ? u0 : 0, nc = nt > 1 && !by_rows ? n : Ho;
      if (b1 > b0 && a.h_mask)
        masked_gate_grad(dstep, b1, G, a.w.w_hh, a.h_mask, B, 0, 4, H, Ho, dprev, drop);
      else if (b1 > b0)
        step_product(dstep + int64_t(b0) * G, b1 - b0, G, a.w.w_hh + c0, Ho, G, nc, dprev + int64_t(b0) * Ho + c0, Ho);
      for (int b = b0; b < b1; ++b) std::memcpy(dh + int64_t(b) * Ho + c0, dprev + int64_t(b) * Ho + c0, nc * sizeof(T));
    }
  };
  run_team(team, body);
  std::memcpy(a.dh0, dh, int64_t(B) * Ho * sizeof(T));
  if (a.dc0) std::memcpy(a.dc0, dc, int64_t(B) * H * sizeof(T));

  // Weight gradients as whole-sequence GEMMs.
  input_side_grads(a, dG, 4, ws.drop);
  recurrent_weight_grad(a, dG, G, 4, k.h_prev.data(), ws.drop);
  add_colsum(dG, TB, G, G, a.g.b_ih);
  add_colsum(dG, TB, G, G, a.g.b_hh);
  if (proj) add_weight_grad(a.threads, a.g.w_hr, dHP, Ho, Ho, k.m.data(), TB, H);
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
