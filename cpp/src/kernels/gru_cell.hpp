// GRU forward and backward through time for one layer-direction, side by side.
//
//   r = ract(W_r x + b_ir + U_r h + b_hr)     z = ract(W_z x + b_iz + U_z h + b_hz)
//   reset_after:  n = act(W_n x + b_in + r * (U_n h + b_hn))
//   reset_before: n = act(W_n x + b_in + U_n (r * h) + b_hn)
//   h' = (1 - z) * n + z * h  =  n + z * (h - n)
#pragma once

#include "kernels/common.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

template <class T>
void gru_forward(const ForwardArgs<T>& a) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, I = s.input_size, G = 3 * H;
  const int Tn = a.seq.T, B = a.seq.B;
  const int64_t TB = int64_t(Tn) * B;
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
  T* gx = ws.gx.reserve(TB * G);  // (T*B, 3H)
  input_projection(a.x, a.w.w_ih, bias, gx, TB, I, G);

  T* h = ws.h.reserve(int64_t(B) * H);     // (B, H)
  copy_or_zero(h, a.h0, int64_t(B) * H);
  T* acc = ws.acc.reserve(int64_t(B) * G);  // (B, 3H) recurrent pre-activations
  T* rh = ws.m.zeros(int64_t(B) * H);       // (B, H) reset_before: r * h
  T* n = ws.tmp.reserve(H);

  DirCache<T>* k = a.cache;
  if (k) {
    k->gates.zeros(TB * G);
    k->h_prev.zeros(TB * H);
    k->aux.zeros(TB * H);
  }
  auto U = cmat(a.w.w_hh, G, H);
  auto active_row = [&](int step, int b, int64_t& row) {
    const int len = a.seq.length(b);
    if (step >= len) return false;
    row = int64_t(a.reverse ? len - 1 - step : step) * B + b;
    return true;
  };

  for (int step = 0; step < Tn; ++step) {
    if (s.reset_after) {
      mat(acc, B, G).noalias() = cmat(h, B, H) * U.transpose();
    } else {
      mat(acc, B, 2 * H, G).noalias() = cmat(h, B, H) * U.topRows(2 * H).transpose();
    }
    // r and z (and, in reset_after, n) for every active row.
    for (int b = 0; b < B; ++b) {
      int64_t row;
      if (!active_row(step, b, row)) continue;
      T* g = acc + int64_t(b) * G;
      const T* gxr = gx + row * G;
      ArrMap<T>(g, 2 * H) += CArrMap<T>(gxr, 2 * H);
      activate(s.ract, g, g, 2 * H);
      CArrMap<T> hv(h + int64_t(b) * H, H);
      if (k) std::memcpy(k->h_prev.data() + row * H, hv.data(), H * sizeof(T));
      if (s.reset_after) {
        ArrMap<T> an(g + 2 * H, H);  // U_n h + b_hn
        if (bhn) an += CArrMap<T>(bhn, H);
        if (k) std::memcpy(k->aux.data() + row * H, an.data(), H * sizeof(T));
        ArrMap<T>(n, H) = CArrMap<T>(gxr + 2 * H, H) + CArrMap<T>(g, H) * an;
        activate(s.act, n, g + 2 * H, H);  // the n slot now holds n
      } else {
        ArrMap<T>(rh + int64_t(b) * H, H) = CArrMap<T>(g, H) * hv;
        if (k) std::memcpy(k->aux.data() + row * H, rh + int64_t(b) * H, H * sizeof(T));
      }
    }
    if (!s.reset_after) {
      mat(acc + 2 * H, B, H, G).noalias() = cmat(rh, B, H) * U.bottomRows(H).transpose();
    }
    for (int b = 0; b < B; ++b) {
      int64_t row;
      if (!active_row(step, b, row)) continue;
      T* g = acc + int64_t(b) * G;
      ArrMap<T> nv(g + 2 * H, H);
      if (!s.reset_after) {
        nv += CArrMap<T>(gx + row * G + 2 * H, H);
        activate(s.act, nv.data(), nv.data(), H);
      }
      ArrMap<T> hv(h + int64_t(b) * H, H);
      hv = nv + CArrMap<T>(g + H, H) * (hv - nv);
      if (k) std::memcpy(k->gates.data() + row * G, g, G * sizeof(T));
      std::memcpy(a.y + row * a.ldy, hv.data(), H * sizeof(T));
    }
  }
  zero_padding(a.seq, a.y, a.ldy, H);
  std::memcpy(a.hn, h, int64_t(B) * H * sizeof(T));
}

template <class T>
void gru_backward(const BackwardArgs<T>& a) {
  const CellSpec& s = a.spec;
  const int H = s.hidden_size, I = s.input_size, G = 3 * H;
  const int Tn = a.seq.T, B = a.seq.B;
  const int64_t TB = int64_t(Tn) * B;
  const DirCache<T>& k = *a.cache;
  Workspace<T>& ws = workspace<T>();

  T* dGx = ws.dgx.zeros(TB * G);  // (T*B, 3H) grads of the input-side pre-activations
  // (T*B, 3H) grads of the recurrent-side pre-activations; differs from dGx only in the n block
  // of reset_after (r * dn), so reset_before shares dGx.
  T* dGa = s.reset_after ? ws.dga.zeros(TB * G) : dGx;
  T* dh = ws.dh.reserve(int64_t(B) * H);  // (B, H)
  copy_or_zero(dh, a.dhn, int64_t(B) * H);
  T* dstep = ws.dstep.reserve(int64_t(B) * G);   // (B, 3H) this step's recurrent-side grads
  T* direct = ws.direct.reserve(int64_t(B) * H); // (B, H) grad to h_prev not through U
  T* dprev = ws.dprev.reserve(int64_t(B) * H);   // (B, H) grad to h_prev through U (or U_n)
  T* dhb = ws.dhb.reserve(H);
  auto U = cmat(a.w.w_hh, G, H);
  auto active_row = [&](int step, int b, int64_t& row) {
    const int len = a.seq.length(b);
    if (step >= len) return false;
    row = int64_t(a.reverse ? len - 1 - step : step) * B + b;
    return true;
  };

  for (int step = Tn - 1; step >= 0; --step) {
    for (int b = 0; b < B; ++b) {
      int64_t row;
      T* ds = dstep + int64_t(b) * G;
      if (!active_row(step, b, row)) {
        std::memset(static_cast<void*>(ds), 0, G * sizeof(T));
        continue;
      }
      const T* gr = k.gates.data() + row * G;
      CArrMap<T> r(gr, H), z(gr + H, H), nv(gr + 2 * H, H);
      CArrMap<T> hp(k.h_prev.data() + row * H, H);
      ArrMap<T> d(dhb, H);
      d = CArrMap<T>(dh + int64_t(b) * H, H) + CArrMap<T>(a.dy + row * a.ldy, H);
      ArrMap<T> dr(ds, H), dz(ds + H, H), dn(ds + 2 * H, H);
      dn = d * (T(1) - z);
      scale_by_derivative(s.act, nv.data(), dn.data(), H);
      dz = d * (hp - nv);
      scale_by_derivative(s.ract, z.data(), dz.data(), H);
      ArrMap<T>(direct + int64_t(b) * H, H) = d * z;
      if (s.reset_after) {
        dr = dn * CArrMap<T>(k.aux.data() + row * H, H);
        scale_by_derivative(s.ract, r.data(), dr.data(), H);
        std::memcpy(dGx + row * G, ds, G * sizeof(T));
        dn *= r;  // recurrent side of n sees r * (U_n h + b_hn)
        std::memcpy(dGa + row * G, ds, G * sizeof(T));
      }
    }
    if (s.reset_after) {
      mat(dprev, B, H).noalias() = cmat(dstep, B, G) * U;
    } else {
      // d(r*h) = dn U_n, then r's gradient, then the r/z part of U.
      mat(dprev, B, H).noalias() = cmat(dstep + 2 * H, B, H, G) * U.bottomRows(H);
      for (int b = 0; b < B; ++b) {
        int64_t row;
        if (!active_row(step, b, row)) continue;
        T* ds = dstep + int64_t(b) * G;
        const T* gr = k.gates.data() + row * G;
        CArrMap<T> drh(dprev + int64_t(b) * H, H);
        ArrMap<T> dr(ds, H);
        dr = drh * CArrMap<T>(k.h_prev.data() + row * H, H);
        scale_by_derivative(s.ract, gr, ds, H);
        ArrMap<T>(direct + int64_t(b) * H, H) += drh * CArrMap<T>(gr, H);
        std::memcpy(dGx + row * G, ds, G * sizeof(T));
      }
      mat(dprev, B, H).noalias() = cmat(dstep, B, 2 * H, G) * U.topRows(2 * H);
    }
    for (int b = 0; b < B; ++b) {
      if (step >= a.seq.length(b)) continue;
      ArrMap<T>(dh + int64_t(b) * H, H) =
          CArrMap<T>(direct + int64_t(b) * H, H) + CArrMap<T>(dprev + int64_t(b) * H, H);
    }
  }
  std::memcpy(a.dh0, dh, int64_t(B) * H * sizeof(T));

  // Weight gradients as whole-sequence GEMMs.
  auto dX = cmat(dGx, TB, G);
  mat(a.g.w_ih, G, I).noalias() += dX.transpose() * cmat(a.x, TB, I);
  add_colsum(dGx, TB, G, G, a.g.b_ih);
  add_colsum(dGa, TB, G, G, a.g.b_hh);
  mat(a.dx, TB, I).noalias() += dX * cmat(a.w.w_ih, G, I);
  auto Hprev = cmat(k.h_prev.data(), TB, H);
  if (s.reset_after) {
    mat(a.g.w_hh, G, H).noalias() += cmat(dGa, TB, G).transpose() * Hprev;
  } else {
    mat(a.g.w_hh, 2 * H, H).noalias() += cmat(dGx, TB, 2 * H, G).transpose() * Hprev;
    mat(a.g.w_hh + 2 * H * H, H, H).noalias() +=
        cmat(dGx + 2 * H, TB, H, G).transpose() * cmat(k.aux.data(), TB, H);
  }
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
