// GRU forward and backward through time for one layer-direction, side by side.
//
//   r = ract(W_r x + b_ir + U_r h + b_hr)     z = ract(W_z x + b_iz + U_z h + b_hz)
//   reset_after:  n = act(W_n x + b_in + r * (U_n h + b_hn))
//   reset_before: n = act(W_n x + b_in + U_n (r * h) + b_hn)
//   h' = (1 - z) * n + z * h  =  n + z * (h - n)
// ONNX clip bounds the arguments of ract and act (all of n's, r * (...) included) to
// [-clip, clip].
#pragma once

#include <type_traits>

#include "kernels/common.hpp"
#include "kernels/tile_steps.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

// Pointwise pieces of a GRU step for units [u0, u0 + n) of one row. rec holds the recurrent
// pre-activations of gate r for those units, z and n following at stride gs (H for a
// whole-row product, 16 for a packed block); gx is the row's input projection, gate q at
// gx + q*xs. k_pre, if given, is the row's cache of pre-activations before clipping (3H).

// r and z, written back over their pre-activations in rec.
template <class T>
inline void gru_pointwise_rz(const CellSpec& s, int u0, int n, T* rec, int gs, const T* gx, int xs,
                             T* k_pre) {
  const int H = s.hidden_size;
  for (int q = 0; q < 2; ++q) {
    ArrMap<T> v(rec + q * gs, n);
    v += CArrMap<T>(gx + q * xs + u0, n);
    if (k_pre) std::memcpy(k_pre + q * H + u0, v.data(), n * sizeof(T));
    if (s.clip > 0) clip_n(v.data(), n, s.clip);
    activate(s.ract, v.data(), v.data(), n);
  }
}

// n and the new state h' = n + z * (h - n); rec holds r and z (activated) and the n block's
// recurrent term: U_n h (reset_after, b_hn added here) or U_n (r * h) (reset_before).
template <class T>
inline void gru_pointwise_n(const CellSpec& s, const T* bhn, int u0, int n, const T* rec, int gs,
                            const T* gx, int xs, const T* hprev, T* hnew, T* scratch, T* k_gates,
                            T* k_aux, T* k_pre) {
  const int H = s.hidden_size;
  CArrMap<T> r(rec, n), z(rec + gs, n);
  ArrMap<T> nv(scratch, n);
  if (s.reset_after) {
    ArrMap<T> an(scratch + n, n);  // U_n h + b_hn
    an = CArrMap<T>(rec + 2 * gs, n);
    if (bhn) an += CArrMap<T>(bhn + u0, n);
    if (k_aux) std::memcpy(k_aux + u0, an.data(), n * sizeof(T));
    nv = CArrMap<T>(gx + 2 * xs + u0, n) + r * an;
  } else {
    nv = CArrMap<T>(gx + 2 * xs + u0, n) + CArrMap<T>(rec + 2 * gs, n);
  }
  if (k_pre) std::memcpy(k_pre + 2 * H + u0, nv.data(), n * sizeof(T));
  if (s.clip > 0) clip_n(nv.data(), n, s.clip);
  activate(s.act, nv.data(), nv.data(), n);
  CArrMap<T> hp(hprev + u0, n);
  ArrMap<T>(hnew + u0, n) = nv + z * (hp - nv);
  if (k_gates) {
    std::memcpy(k_gates + u0, rec, n * sizeof(T));
    std::memcpy(k_gates + H + u0, rec + gs, n * sizeof(T));
    std::memcpy(k_gates + 2 * H + u0, nv.data(), n * sizeof(T));
  }
}

// Whether the spec is the common GRU, whose float gate pass runs fused (gru_gates_fused):
// reset_after, sigmoid r and z, tanh n, no clip.
inline bool gru_fused_spec(const CellSpec& s) {
  return s.reset_after && s.ract.f == Activation::Sigmoid && s.act.f == Activation::Tanh && !(s.clip > 0);
}

// The operands of gru_gates_fused for units u0.. (each pointer at u0): the pre-activation
// sums of r and z (pr, pz) with what is added to them (ar, az), the input term of n (xn) with
// its addend (axn, null: none), the recurrent term of n (hn) with its addend (ahn, null: none),
// and h before the step.
struct GruFusedIn {
  const float *pr, *ar, *pz, *az, *xn, *axn, *hn, *ahn, *h;
};

// The vectors of gru_gates_fused, R side by side (as lstm_gates_vecs): vector v from in[v],
// its h' to hnew[v], its caches to k_gates[v] (r, z, n at q*H) and k_aux[v] (an) where those
// are given. A vector computes exactly as alone:
//   r = sigmoid(pr + ar), z = sigmoid(pz + az), an = hn + ahn,
//   n = tanh((xn + axn) + r * an), h' = n + z * (h - n),
// the last two each one fused multiply-add (written out, so that no build contracts them
// differently where the code is inlined).
template <class S, int R>
inline void gru_gates_vecs(const GruFusedIn* in, float* const* hnew, float* const* k_gates, int H,
                           float* const* k_aux) {
  using V = typename S::V;
  V r[R], z[R], an[R], nv[R];
  auto sum = [](const float* p, const float* add) { return add ? S::add(S::load(p), S::load(add)) : S::load(p); };
  for (int v = 0; v < R; ++v) r[v] = vmath::sigmoid<S>(sum(in[v].pr, in[v].ar));
  for (int v = 0; v < R; ++v) z[v] = vmath::sigmoid<S>(sum(in[v].pz, in[v].az));
  for (int v = 0; v < R; ++v) {
    an[v] = sum(in[v].hn, in[v].ahn);
    nv[v] = vmath::tanh<S>(S::fma(r[v], an[v], sum(in[v].xn, in[v].axn)));
  }
  for (int v = 0; v < R; ++v) {
    S::store(hnew[v], S::fma(z[v], S::sub(S::load(in[v].h), nv[v]), nv[v]));
    if (k_gates) {
      S::store(k_gates[v], r[v]);
      S::store(k_gates[v] + H, z[v]);
      S::store(k_gates[v] + 2 * H, nv[v]);
    }
    if (k_aux) S::store(k_aux[v], an[v]);
  }
}

// gru_pointwise_rz and gru_pointwise_n for gru_fused_spec in float, N units at a time in
// registers, four vectors side by side (gru_gates_vecs). The last partial vector goes through
// the same code on padded copies, so a unit's result does not depend on where it sits.
// k_gates (r, z, n at q*H) and k_aux (an) are filled if given.
template <class S>
inline void gru_gates_fused(int n, const GruFusedIn& in, float* hnew, float* k_gates, int H, float* k_aux) {
  constexpr int N = S::N;
  auto at = [](const float* p, int u) { return p ? p + u : nullptr; };
  auto shifted = [&](int u) {
    return GruFusedIn{in.pr + u, at(in.ar, u), in.pz + u, at(in.az, u), in.xn + u, at(in.axn, u), in.hn + u,
                      at(in.ahn, u), in.h + u};
  };
  int u = 0;
  for (; u + 4 * N <= n; u += 4 * N) {
    GruFusedIn v[4];
    float *h[4], *kg[4], *ka[4];
    for (int j = 0; j < 4; ++j) {
      v[j] = shifted(u + j * N);
      h[j] = hnew + u + j * N;
      kg[j] = k_gates ? k_gates + u + j * N : nullptr;
      ka[j] = k_aux ? k_aux + u + j * N : nullptr;
    }
    gru_gates_vecs<S, 4>(v, h, k_gates ? kg : nullptr, H, k_aux ? ka : nullptr);
  }
  for (; u + N <= n; u += N) {
    const GruFusedIn v = shifted(u);
    float *h = hnew + u, *kg = k_gates ? k_gates + u : nullptr, *ka = k_aux ? k_aux + u : nullptr;
    gru_gates_vecs<S, 1>(&v, &h, k_gates ? &kg : nullptr, H, k_aux ? &ka : nullptr);
  }
  if (u < n) {
    const int m = n - u;
    float buf[9][N] = {}, hn[N], kgb[3 * N], kab[N];
    const float* src[9] = {in.pr, in.ar, in.pz, in.az, in.xn, in.axn, in.hn, in.ahn, in.h};
    const float* pad[9];
    for (int i = 0; i < 9; ++i) {
      if (src[i]) std::memcpy(buf[i], src[i] + u, m * sizeof(float));
      pad[i] = src[i] ? buf[i] : nullptr;
    }
    const GruFusedIn v{pad[0], pad[1], pad[2], pad[3], pad[4], pad[5], pad[6], pad[7], pad[8]};
    float *h = hn, *kg = kgb, *ka = kab;
    gru_gates_vecs<S, 1>(&v, &h, &kg, N, &ka);
    std::memcpy(hnew + u, hn, m * sizeof(float));
    if (k_gates)
      for (int q = 0; q < 3; ++q) std::memcpy(k_gates + q * H + u, kgb + q * N, m * sizeof(float));
    if (k_aux) std::memcpy(k_aux + u, kab, m * sizeof(float));
  }
}

#if RNNKIT_AMX
// gru_forward on the AMX tiles (tile_time_loop), for gru_fused_spec: the accumulators hold a
// unit block's r and z (x_t W^T and h U^T summed in the same tiles) and n's two terms apart
// (r scales the recurrent one alone).
inline void gru_forward_tiles(const ForwardArgs<float>& a) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size;
  // what the gate pass adds to the tiles' sums, gate q at q*H: b_ir + b_hr, b_iz + b_hz, b_in,
  // b_hn (zeros without biases)
  float* bias = workspace<float>().bias.reserve(4 * H);
  for (int j = 0; j < 2 * H; ++j) bias[j] = s.has_bias ? a.w.b_ih[j] + a.w.b_hh[j] : 0.0f;
  for (int j = 0; j < H; ++j) {
    bias[2 * H + j] = s.has_bias ? a.w.b_ih[2 * H + j] : 0.0f;
    bias[3 * H + j] = s.has_bias ? a.w.b_hh[2 * H + j] : 0.0f;
  }
  auto products = [](const std::uint16_t* xa, int Kx, const std::uint16_t* ha, int Kh, int rows,
                     const std::uint16_t* px, const std::uint16_t* ph, int W, float* acc) {
    const std::size_t cn = 2 * 2 * kUnitBlock;  // chunk 2 (n) in a pair row
    for (int r = 0; r < rows; r += 32) {
      const std::uint16_t* xr = xa + std::size_t(r) * Kx;
      const std::uint16_t* hr = ha + std::size_t(r) * Kh;
      float* ar = acc + r * kTileAcc;
      if (r + 16 < rows)
        tile_chunk_pair<true>(xr, Kx, px, hr, Kh, ph, W, ar, kTileAcc);
      else
        tile_chunk_pair<false>(xr, Kx, px, hr, Kh, ph, W, ar, kTileAcc);
    }
    for (int r = 0; r < rows; r += 32) {
      const std::uint16_t* xr = xa + std::size_t(r) * Kx;
      const std::uint16_t* hr = ha + std::size_t(r) * Kh;
      float* ar = acc + r * kTileAcc;
      if (r + 16 < rows)
        tile_chunk_split<true>(xr, Kx, px + cn, hr, Kh, ph + cn, W, ar + 2 * kUnitBlock, ar + 3 * kUnitBlock, kTileAcc);
      else
        tile_chunk_split<false>(xr, Kx, px + cn, hr, Kh, ph + cn, W, ar + 2 * kUnitBlock, ar + 3 * kUnitBlock,
                                kTileAcc);
    }
  };
  using S = vmath::Best;
  // a whole vector of units: four rows side by side (gru_gates_vecs)
  auto gate_pass = [&](int b, int rows, int u0, int n, const float* acc, const float* h, float* hn, float*) {
    const float* bu = bias + u0;
    auto in = [&](int r) {
      const float* ar = acc + r * kTileAcc;
      return GruFusedIn{ar,      bu + 0 * H, ar + kUnitBlock, bu + H, ar + 2 * kUnitBlock, bu + 2 * H,
                        ar + 3 * kUnitBlock, bu + 3 * H, h + int64_t(b + r) * H + u0};
    };
    int r = 0;
    if (n == S::N)
      for (; r + 4 <= rows; r += 4) {
        GruFusedIn v[4];
        float* out[4];
        for (int j = 0; j < 4; ++j) {
          v[j] = in(r + j);
          out[j] = hn + int64_t(b + r + j) * H + u0;
        }
        gru_gates_vecs<S, 4>(v, out, nullptr, H, nullptr);
      }
    for (; r < rows; ++r) gru_gates_fused<S>(n, in(r), hn + int64_t(b + r) * H + u0, nullptr, H, nullptr);
  };
  tile_time_loop(a, products, gate_pass);
}
#endif  // RNNKIT_AMX

template <class T>
void gru_forward(const ForwardArgs<T>& a) {
#if RNNKIT_AMX
  if constexpr (std::is_same<T, float>::value) {
    if (tile_loop_applies(a) && gru_fused_spec(a.spec)) return gru_forward_tiles(a);
  }
#endif
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, I = s.input_size, G = 3 * H;
  const int Tn = a.seq.steps(), B = a.seq.B;
  const int64_t TB = a.seq.rows();  // rows of x, y, gx and the cache (T*B, fewer with lengths)
  Workspace<T>& ws = workspace<T>();

  // r and z take both biases in the hoisted projection; b_hn joins it only in reset_before,
  // where it sits outside r * (...).
  T* bias = nullptr;
  const T* bhn = nullptr;
  if (s.has_bias) {
    bias = ws.bias.reserve(G);
    for (int j = 0; j < 2 * H; ++j) bias[j] = a.w.b_ih[j] + a.w.b_hh[j];
    for (int j = 2 * H; j < G; ++j) bias[j] = a.w.b_ih[j] + (s.reset_after ? T(0) : a.w.b_hh[j]);
    if (s.reset_after) bhn = a.w.b_hh + 2 * H;
  }
  // a masked input (per-gate dropout) is projected unpacked, gate by gate
  const int xs = gx_stride(H, (a.w.packed_ih || a.w.packed_ih_bf16) && !a.x_mask), ldx = 3 * xs;
  T* gx = ws.gx.reserve(TB * ldx);  // (rows, 3*xs) gate q of a row at q*xs
  if (a.x_mask)
    masked_input_projection(a.x, a.w.w_ih, bias, gx, ldx, xs, a.seq, I, 3, H, a.x_mask, ws.drop.reserve(TB * I));
  else
    input_projection(a.x, a.w.w_ih, bias, gx, TB, I, 3, H, a.threads, a.w.packed_ih, a.w.packed_ih_bf16);

  // Two (B, H), the state before and after a step, each 64-byte aligned (see lstm_forward).
  const int64_t hstride = aligned_size<T>(int64_t(B) * H);
  T* hbuf = ws.h.reserve(2 * hstride);
  copy_or_zero(hbuf, a.h0, int64_t(B) * H);
  T* rh = ws.m.zeros(int64_t(B) * H);  // (B, H) reset_before: r * h

  DirCache<T>* k = a.cache;
  if (k) {
    k->gates.reserve(TB * G);
    k->h_prev.reserve(TB * H);
    k->aux.reserve(TB * H);
    if (s.caches_pre()) k->pre.reserve(TB * G);
  }
  T* pre = k && s.caches_pre() ? k->pre.data() : nullptr;  // (T*B, 3H) or null
  // the common GRU in float: r, z, n and h' in one pass per row (gru_gates_fused)
  const bool fused = std::is_same<T, float>::value && gru_fused_spec(s) && !pre;
  auto row_of = [&](int step, int b) { return step_row(a.seq, a.reverse, step, b); };

  const float* p32 = nullptr;
  const std::uint16_t* p16 = nullptr;
  if constexpr (std::is_same<T, float>::value) {
    p32 = a.w.packed_hh;
    if (B <= kBf16MaxRows) p16 = a.w.packed_hh_bf16;
  }
  const bool packed = p32 != nullptr && !a.h_mask;  // a masked loop runs unpacked, on one thread
  const T* mask_n = a.h_mask ? a.h_mask + 2 * int64_t(B) * H : nullptr;  // n's (B, H) scales
  T* drop = a.h_mask ? ws.drop.reserve(int64_t(B) * H) : nullptr;
  // Product of rows h (B, H) [h-columns k0..k1] with columns [c0, c0 + ncols) of unit block
  // ub, into out (add: onto the other k-segment's sum, see segmented_row_product).
  auto block_product = [&](const T* h, int nb, int ub, int c0, int ncols, T* out, int ldo, int ocs,
                           int k0 = 0, int k1 = -1, bool add = false) {
    if constexpr (std::is_same<T, float>::value) {
      const int W = 3 * kUnitBlock;
      if (k1 < 0) k1 = H;
      if (p16)
        packed_product(h + k0, nb, H, p16 + (std::size_t(ub) * bf16_rows(H, kBf16Layout) + k0) * W, W, c0, ncols,
                       k1 - k0, out, ldo, ocs, add);
      else
        packed_product(h + k0, nb, H, p32 + (std::size_t(ub) * H + k0) * W, W, c0, ncols, k1 - k0, out, ldo,
                       ocs, add);
    }
  };
  // The same for unit blocks [first, last) and every column of h, block ub into out + ub*16.
  auto blocks_product = [&](const T* h, int nb, int first, int last, int c0, int ncols, T* out, int ldo, int ocs) {
    if constexpr (std::is_same<T, float>::value) {
      const int W = 3 * kUnitBlock;
      if (p16)
        packed_blocks_product(h, nb, H, p16, std::size_t(bf16_rows(H, kBf16Layout)) * W, first, last, W, c0,
                              ncols, H, out, ldo, ocs);
      else
        packed_blocks_product(h, nb, H, p32, std::size_t(H) * W, first, last, W, c0, ncols, H, out, ldo, ocs);
    }
  };
  const int blocks = unit_blocks(H), W = 3 * kUnitBlock;
  // acc (B, 3*Hp): each row's recurrent pre-activations, gate-major with gate stride Hp.
  const int Hp = packed ? blocks * kUnitBlock : H, lda = 3 * Hp;
  T* acc = ws.acc.reserve(int64_t(B) * lda);
  // From 16 rows the team splits the batch instead (row_team, see lstm_forward).
  const int rteam = row_team(packed, a.threads, B, Tn, int64_t(B) * G * H);
  const int team = rteam > 1 ? rteam
                   : (packed && a.threads > 1 && H >= 128 && units_team_pays(B, int64_t(G) * H))
                       ? units_team(a.threads, blocks) : 1;
  // Batch 1, reset_after: the product in k-segments (segmented_row_product), split as a
  // team of two would be. reset_before needs all of r * h mid-step and keeps the barrier.
  const bool row1 = packed && B == 1 && s.reset_after;
  const int ks = thread_units(H, 0, 2).n;
  Barrier barrier;
  StepFlags flags;
  auto U = cmat(a.w.w_hh, G, H);

  auto body = [&](int tid, int nt) {
    barrier.set_size(nt);
    const bool by_rows = nt > 1 && rteam > 1;
    // this thread's units (all of them when splitting by rows) and rows (all when by units)
    const auto [first, last, u0, n] = by_rows ? ThreadUnits{0, blocks, 0, H} : thread_units(H, tid, nt);
    ActiveRows active(a.seq, by_rows, tid, nt);
    const bool exchange = nt > 1 && !by_rows;  // threads read each other's units of h
    T* scratch = workspace<T>().tmp.reserve(2 * int64_t(n));
    T* hcur = hbuf;
    T* hnext = hbuf + hstride;
    for (int step = 0; step < Tn; ++step) {
      const auto [b0, b1] = active.at(step, [&] { barrier.wait(); });  // this step's running rows
      const int nb = b1 - b0;
      // Phase 1: recurrent products from h (all gates, or r and z in reset_before), then r, z.
      if (!row1 && exchange) prefetch_lines(hcur, int64_t(b1) * H);
      if (row1) {
        segmented_row_product(tid, nt, step, ks, H, hcur, first, last, flags, [&](int ub, int k0, int k1, bool add) {
          block_product(hcur, 1, ub, 0, W, acc + ub * kUnitBlock, lda, Hp, k0, k1, add);
        });
      } else if (packed) {
        if (nb > 0)
          blocks_product(hcur + int64_t(b0) * H, nb, first, last, 0, s.reset_after ? W : 2 * kUnitBlock,
                         acc + int64_t(b0) * lda, lda, Hp);
      } else if (a.h_mask) {
        masked_gate_product(hcur, b1, H, a.w.w_hh, a.h_mask, B, 0, s.reset_after ? 3 : 2, H, acc, lda, drop);
      } else if (s.reset_after) {
        mat(acc, b1, G).noalias() = cmat(hcur, b1, H) * U.transpose();
      } else {
        mat(acc, b1, 2 * H, G).noalias() = cmat(hcur, b1, H) * U.topRows(2 * H).transpose();
      }
      for (int b = b0; b < b1 && !fused; ++b) {
        const int64_t row = row_of(step, b);
        T* rec = acc + int64_t(b) * lda + u0;
        gru_pointwise_rz(s, u0, n, rec, Hp, gx + row * ldx, xs, pre ? pre + row * G : nullptr);
        if (!s.reset_after)
          ArrMap<T>(rh + int64_t(b) * H + u0, n) = CArrMap<T>(rec, n) * CArrMap<T>(hcur + int64_t(b) * H + u0, n);
        if (!s.reset_after && mask_n)
          ArrMap<T>(rh + int64_t(b) * H + u0, n) *= CArrMap<T>(mask_n + int64_t(b) * H + u0, n);
      }
      // Phase 2 (reset_before): U_n (r * h) needs every unit's r * h.
      if (!s.reset_after) {
        if (exchange) {
          barrier.wait();
          prefetch_lines(rh, int64_t(b1) * H);
        }
        if (packed) {
          if (nb > 0)
            blocks_product(rh + int64_t(b0) * H, nb, first, last, 2 * kUnitBlock, kUnitBlock,
                           acc + int64_t(b0) * lda + 2 * Hp, lda, Hp);
        } else {
          mat(acc + 2 * H, b1, H, G).noalias() = cmat(rh, b1, H) * U.bottomRows(H).transpose();
        }
      }
      for (int b = b0; b < b1; ++b) {
        const int64_t row = row_of(step, b);
        const T* hc = hcur + int64_t(b) * H;
        T* hn = hnext + int64_t(b) * H;
        if (k) {
          std::memcpy(k->h_prev.data() + row * H + u0, hc + u0, n * sizeof(T));
          if (!s.reset_after) std::memcpy(k->aux.data() + row * H + u0, rh + int64_t(b) * H + u0, n * sizeof(T));
        }
        T* rec = acc + int64_t(b) * lda + u0;
        const T* g = gx + row * ldx + u0;
        if constexpr (std::is_same<T, float>::value) {
          if (fused) {
            gru_gates_fused<vmath::Best>(
                n, GruFusedIn{rec, g, rec + Hp, g + xs, g + 2 * xs, nullptr, rec + 2 * Hp, bhn ? bhn + u0 : nullptr,
                              hc + u0},
                hn + u0, k ? k->gates.data() + row * G + u0 : nullptr, H, k ? k->aux.data() + row * H + u0 : nullptr);
            std::memcpy(a.y + row * a.ldy + u0, hn + u0, n * sizeof(T));
            continue;
          }
        }
        gru_pointwise_n(s, bhn, u0, n, rec, Hp, gx + row * ldx, xs, hc, hn, scratch,
                        k ? k->gates.data() + row * G : nullptr,
                        (k && s.reset_after) ? k->aux.data() + row * H : nullptr, pre ? pre + row * G : nullptr);
        std::memcpy(a.y + row * a.ldy + u0, hn + u0, n * sizeof(T));
      }
      if (row1) {
        if (nt > 1) flags.post(tid, step + 1);  // this thread's units of h for step + 1 are written
      } else if (exchange) {
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
void gru_backward(const BackwardArgs<T>& a) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, G = 3 * H;
  const int Tn = a.seq.steps(), B = a.seq.B;
  const int64_t TB = a.seq.rows();  // rows of x, dy, dx and the cache (T*B, fewer with lengths)
  const DirCache<T>& k = *a.cache;
  const T* pre = s.caches_pre() ? k.pre.data() : nullptr;  // (T*B, 3H) or null
  Workspace<T>& ws = workspace<T>();

  T* dGx = ws.dgx.reserve(TB * G);  // (rows, 3H) grads of the input-side pre-activations
  // (rows, 3H) grads of the recurrent-side pre-activations; differs from dGx only in the n block
  // of reset_after (r * dn), so reset_before shares dGx.
  T* dGa = s.reset_after ? ws.dga.reserve(TB * G) : dGx;
  T* dh = ws.dh.reserve(int64_t(B) * H);  // (B, H) grad of the running h
  copy_or_zero(dh, a.dhn, int64_t(B) * H);
  // Two (B, 3H) step-gradient buffers, used alternately (see lstm_backward).
  T* dsteps = ws.dstep.reserve(2 * int64_t(B) * G);
  T* direct = ws.direct.reserve(int64_t(B) * H);  // (B, H) grad to h_prev not through U
  T* dprev = ws.dprev.reserve(int64_t(B) * H);    // (B, H) grad to h_prev through U (or U_n)
  auto row_of = [&](int step, int b) { return step_row(a.seq, a.reverse, step, b); };
  const int blocks = H / kUnitBlock;
  // From 16 rows, a team splits the batch (row_team, see lstm_backward).
  // A masked loop (recurrent dropout) runs on one thread.
  const bool rows_ok = std::is_same<T, float>::value && RNNKIT_PACKED_KERNELS && H % kUnitBlock == 0 && !a.h_mask;
  const int rteam = row_team(rows_ok, a.threads, B, Tn, int64_t(B) * G * H);
  const int team = rteam > 1 ? rteam
                   : (!a.h_mask && a.threads > 1 && H >= 128 && H % kUnitBlock == 0 &&
                      units_team_pays(B, int64_t(G) * H))
                       ? std::min(a.threads, blocks) : 1;
  const T* mask_n = a.h_mask ? a.h_mask + 2 * int64_t(B) * H : nullptr;  // n's (B, H) scales
  T* drop = a.h_mask ? ws.drop.reserve(int64_t(B) * H) : nullptr;
  Barrier barrier;

  // By units: each thread owns units [u0, u0 + n): their pointwise gradients and the same
  // columns of the products with U. By rows: rows [b0, b1), every unit and column.
  auto body = [&](int tid, int nt) {
    barrier.set_size(nt);
    const bool by_rows = nt > 1 && rteam > 1;
    const auto [first, last, u0, n] = by_rows ? ThreadUnits{0, blocks, 0, H} : thread_units(H, tid, nt);
    ActiveRows active(a.seq, by_rows, tid, nt);
    (void)first;
    (void)last;
    T* d = workspace<T>().tmp.reserve(n);  // this row's total gradient of h, units u0..
    for (int step = Tn - 1; step >= 0; --step) {
      const auto [b0, b1] = active.at(step, [&] { barrier.wait(); });  // this step's running rows
      const int nb = b1 - b0;
      T* dstep = dsteps + (step & 1) * int64_t(B) * G;
      for (int b = b0; b < b1; ++b) {
        const int64_t row = row_of(step, b);
        T* ds = dstep + int64_t(b) * G;
        const T* gr = k.gates.data() + row * G + u0;
        CArrMap<T> r(gr, n), z(gr + H, n), nv(gr + 2 * H, n);
        CArrMap<T> hp(k.h_prev.data() + row * H + u0, n);
        ArrMap<T> dv(d, n);
        dv = CArrMap<T>(dh + int64_t(b) * H + u0, n) + CArrMap<T>(a.dy + row * a.ldy + u0, n);
        ArrMap<T> dr(ds + u0, n), dz(ds + H + u0, n), dn(ds + 2 * H + u0, n);
        // the pre-activations of gate q, units u0.. (null when the forward kept none)
        auto pq = [&](int q) { return pre ? pre + row * G + q * H + u0 : nullptr; };
        dn = dv * (T(1) - z);
        scale_by_derivative(s.act, nv.data(), dn.data(), n, pq(2), s.clip);
        dz = dv * (hp - nv);
        scale_by_derivative(s.ract, z.data(), dz.data(), n, pq(1), s.clip);
        ArrMap<T>(direct + int64_t(b) * H + u0, n) = dv * z;
        if (s.reset_after) {
          dr = dn * CArrMap<T>(k.aux.data() + row * H + u0, n);
          scale_by_derivative(s.ract, r.data(), dr.data(), n, pq(0), s.clip);
          for (int q = 0; q < 3; ++q) std::memcpy(dGx + row * G + q * H + u0, ds + q * H + u0, n * sizeof(T));
          dn *= r;  // recurrent side of n sees r * (U_n h + b_hn)
          for (int q = 0; q < 3; ++q) std::memcpy(dGa + row * G + q * H + u0, ds + q * H + u0, n * sizeof(T));
        }
      }
      if (!by_rows) barrier.wait();  // every unit's dn (and, in reset_after, dr and dz) is written
      const int c0 = nt > 1 && !by_rows ? u0 : 0;
      T* dsr = dstep + int64_t(b0) * G;  // this thread's rows
      T* dpr = dprev + int64_t(b0) * H;
      if (!s.reset_after) {
        // d(r*h) = dn U_n for this thread's units, then r's gradient there.
        if (nb > 0) step_product(dsr + 2 * H, nb, G, a.w.w_hh + 2 * H * H + c0, H, H, n, dpr + c0, H);
        for (int b = b0; b < b1; ++b) {
          const int64_t row = row_of(step, b);
          T* ds = dstep + int64_t(b) * G;
          const T* gr = k.gates.data() + row * G + u0;
          // the gradient of r * h, times n's mask (which scales both factors' shares)
          if (mask_n) ArrMap<T>(dprev + int64_t(b) * H + u0, n) *= CArrMap<T>(mask_n + int64_t(b) * H + u0, n);
          CArrMap<T> drh(dprev + int64_t(b) * H + u0, n);
          ArrMap<T> dr(ds + u0, n);
          dr = drh * CArrMap<T>(k.h_prev.data() + row * H + u0, n);
          scale_by_derivative(s.ract, gr, dr.data(), n, pre ? pre + row * G + u0 : nullptr, s.clip);
          ArrMap<T>(direct + int64_t(b) * H + u0, n) += drh * CArrMap<T>(gr, n);
          for (int q = 0; q < 3; ++q) std::memcpy(dGx + row * G + q * H + u0, ds + q * H + u0, n * sizeof(T));
        }
        if (!by_rows) barrier.wait();  // every unit's dr is written
      }
      // dh = direct + (dr, dz[, dn]) U for this thread's columns.
      if (nb > 0 && a.h_mask)
        masked_gate_grad(dsr, nb, G, a.w.w_hh, a.h_mask, B, 0, s.reset_after ? 3 : 2, H, H, dpr, drop);
      else if (nb > 0)
        step_product(dsr, nb, G, a.w.w_hh + c0, H, s.reset_after ? G : 2 * H, n, dpr + c0, H);
      for (int b = b0; b < b1; ++b) {
        ArrMap<T>(dh + int64_t(b) * H + u0, n) =
            CArrMap<T>(direct + int64_t(b) * H + u0, n) + CArrMap<T>(dprev + int64_t(b) * H + u0, n);
      }
    }
  };
  run_team(team, body);
  std::memcpy(a.dh0, dh, int64_t(B) * H * sizeof(T));

  // Weight gradients as whole-sequence GEMMs. reset_before: U_n multiplies r * h (times n's
  // mask: aux holds it), r and z h itself; dGa is dGx there.
  input_side_grads(a, dGx, 3, ws.drop);
  add_colsum(dGx, TB, G, G, a.g.b_ih);
  add_colsum(dGa, TB, G, G, a.g.b_hh);
  recurrent_weight_grad(a, dGa, G, s.reset_after ? 3 : 2, k.h_prev.data(), ws.drop);
  if (!s.reset_after) add_weight_grad(a.threads, a.g.w_hh + 2 * H * H, dGx + 2 * H, G, H, k.aux.data(), TB, H);
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
