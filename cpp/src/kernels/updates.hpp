// The training loop's work besides the recurrent layers, on the core: the dense products of the
// layers around them (matmul) and the optimizers' updates (update). Running them here keeps a
// fit on one pool of threads: numpy's BLAS would start its own, which then compete with the
// core's for the same cores (about 2x slower steps on two cores).
// Included only by rnn_kernels.cpp.
#pragma once

#include "kernels/common.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

// Split by output rows; each thread's rows are one Eigen product.
template <class T>
void matmul(const MatmulArgs<T>& a) {
  if (a.M == 0 || a.N == 0) return;
  split_rows(a.threads, a.M, 2.0 * a.M * a.N * a.K, [&](Eigen::Index r0, Eigen::Index r1) {
    auto out = mat(a.out + r0 * a.ldo, r1 - r0, a.N, a.ldo);
    auto product = [&](const auto& A) {
      auto run = [&](const auto& B) {
        if (a.accumulate)
          out.noalias() += A * B;
        else if (a.K == 0)
          out.setZero();
        else
          out.noalias() = A * B;
      };
      if (a.trans_b)
        run(cmat(a.b, a.N, a.K, a.ldb).transpose());
      else
        run(cmat(a.b, a.K, a.N, a.ldb));
    };
    if (a.trans_a)
      product(cmat(a.a + r0, a.K, r1 - r0, a.lda).transpose());
    else
      product(cmat(a.a + r0 * a.lda, r1 - r0, a.K, a.lda));
  });
}

// Each line is one numpy operation of optimizers.py on one element, rounded to T; contraction
// into fused multiply-adds is off here, since it would round differently.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

template <class T>
void update(const UpdateArgs<T>& a) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  const int64_t n = a.n;
  const T lr = T(a.lr), decay = T(a.decay), momentum = T(a.momentum), eps = T(a.eps);
  if (a.decay != 1.0)
    for (int64_t i = 0; i < n; ++i) p[i] *= decay;
  switch (a.rule) {
    case UpdateRule::SGD: {
      T* __restrict m = a.s0;
      if (!m) {
        for (int64_t i = 0; i < n; ++i) p[i] -= g[i] * lr;
      } else if (a.nesterov) {
        for (int64_t i = 0; i < n; ++i) {
          const T step = g[i] * lr;
          m[i] = m[i] * momentum - step;
          p[i] -= step;
          p[i] += m[i] * momentum;
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          m[i] = m[i] * momentum - g[i] * lr;
          p[i] += m[i];
        }
      }
      return;
    }
    case UpdateRule::Adam: {
      T* __restrict m = a.s0;
      T* __restrict v = a.s1;
      T* __restrict vhat = a.s2;
      const T c1 = T(a.one_minus_b1), c2 = T(a.one_minus_b2), alpha = T(a.alpha);
      for (int64_t i = 0; i < n; ++i) {
        m[i] += (g[i] - m[i]) * c1;
        v[i] += (g[i] * g[i] - v[i]) * c2;
        T vi = v[i];
        if (vhat) vi = vhat[i] = std::max(vhat[i], vi);
        p[i] -= m[i] / (std::sqrt(vi) + eps) * alpha;
      }
      return;
    }
    case UpdateRule::RMSprop: {
      T* __restrict vel = a.s0;
      T* __restrict mom = a.s1;
      T* __restrict avg = a.s2;
      const T rho = T(a.rho), c = T(a.one_minus_rho);
      for (int64_t i = 0; i < n; ++i) {
        vel[i] = vel[i] * rho + g[i] * g[i] * c;
        T d = vel[i];
        if (avg) {
          avg[i] = avg[i] * rho + c * g[i];
          d = vel[i] - avg[i] * avg[i];
        }
        const T inc = g[i] / std::sqrt(d + eps) * lr;
        if (mom) {
          mom[i] = mom[i] * momentum + inc;
          p[i] -= mom[i];
        } else {
          p[i] -= inc;
        }
      }
      return;
    }
  }
}

#pragma GCC pop_options

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
