// Vectorized float32 exp, sigmoid and tanh for the gate pass, accurate to a few 1e-7 relative
// (tests/test_activations.py checks 1e-6 against float64 over the whole float range).
//
//   exp(x)     = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (two-part ln 2), p a degree-6
//                polynomial; x clamped to [-87.3, 88.7], where 2^n stays a normal float.
//                p * 2^n is rounded once: VSCALEFPS on AVX-512, elsewhere two exact halves.
//   sigmoid(x) = 1 / (1 + exp(-x))
//   tanh(x)    = x (1 + x^2 q(x^2)) (Taylor to x^9) for |x| < 0.25, else
//                sign(x) (1 - 2 / (exp(2|x|) + 1)), which is +-1 exactly beyond |x| ~ 9.
//   1 / d      = on AVX-512 the reciprocal estimate VRCP14PS (14 bits) and one Newton step,
//                within 1 ulp (6.1e-8 relative measured) and exact at 1: a division (VDIVPS
//                zmm) costs 3-5 times as much and was the largest cost of the gate pass on AMX
//                machines. The AVX2 and scalar builds divide.
//
// One template over a vector type: 16 lanes (AVX-512F), 8 lanes (AVX2+FMA) or 1 lane (plain
// C++), so every build computes the same formulas (AVX-512 with its reciprocal). A call over
// n values runs whole vectors and then the remainder through the same vector code on a padded
// copy, so a value's result does not depend on where it sits in the call (and so not on the
// thread split).
//
// Included only by kernels/common.hpp, which is compiled once per ISA (RNNKIT_ISA_NS names it).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace rnnkit {
namespace RNNKIT_ISA_NS {
namespace vmath {

// p * 2^n for integral n in [-126, 128] (exp's range): 2^n in two halves, so that n = 128 does
// not overflow; the first product is exact, so the result is rounded once.
template <class S>
inline typename S::V halves_scale(typename S::V p, typename S::V n) {
  const typename S::V h = S::round(S::mul(n, S::set(0.5f)));
  return S::mul(S::mul(p, S::pow2n(h)), S::pow2n(S::sub(n, h)));
}

struct Scalar {
  using V = float;
  static constexpr int N = 1;
  static V load(const float* p) { return *p; }
  static void store(float* p, V v) { *p = v; }
  static V set(float a) { return a; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V fnmadd(V a, V b, V c) { return c - a * b; }
  static V div(V a, V b) { return a / b; }
  static V rcp(V d) { return 1.0f / d; }
  static V min(V a, V b) { return a < b ? a : b; }  // b when either is NaN, as minps
  static V max(V a, V b) { return a > b ? a : b; }
  static V round(V a) { return std::nearbyint(a); }
  static V abs(V a) { return std::fabs(a); }
  static V copysign(V mag, V sgn) { return std::copysign(mag, sgn); }
  static V select_lt(V a, V b, V yes, V no) { return a < b ? yes : no; }  // a < b ? yes : no
  static V pow2n(V n) {  // 2^n for integral n in [-126, 127]; NaN stays NaN
    if (!(n == n)) return n;
    const std::int32_t bits = (std::int32_t(n) + 127) << 23;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static V scale2n(V p, V n) { return halves_scale<Scalar>(p, n); }
};

#if defined(__AVX2__) && defined(__FMA__)
struct Avx2 {
  using V = __m256;
  static constexpr int N = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set(float a) { return _mm256_set1_ps(a); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  // RCPPS has 12 bits, and one Newton step leaves sigmoid(+inf) a ulp below 1: divide here
  static V rcp(V d) { return _mm256_div_ps(_mm256_set1_ps(1.0f), d); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V copysign(V mag, V sgn) {
    const V m = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(m, mag), _mm256_and_ps(m, sgn));
  }
  static V select_lt(V a, V b, V yes, V no) { return _mm256_blendv_ps(no, yes, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
  static V pow2n(V n) {
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_castsi256_ps(e);
  }
  static V scale2n(V p, V n);
};
#endif

#if defined(__AVX2__) && defined(__FMA__)
inline Avx2::V Avx2::scale2n(V p, V n) { return halves_scale<Avx2>(p, n); }
#endif

#if defined(__AVX512F__)
struct Avx512 {
  using V = __m512;
  static constexpr int N = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V set(float a) { return _mm512_set1_ps(a); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  // 1/d for finite d: VRCP14PS (14 bits) and one Newton step, r (2 - d r), to about 1 ulp
  static V rcp(V d) {
    const V r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
  }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V copysign(V mag, V sgn) {
    const __m512i m = _mm512_set1_epi32(int(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(m, _mm512_castps_si512(mag)),
                                               _mm512_and_si512(m, _mm512_castps_si512(sgn))));
  }
  static V select_lt(V a, V b, V yes, V no) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), no, yes);
  }
  static V pow2n(V n) {
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_castsi512_ps(e);
  }
  // p * 2^n rounded once (VSCALEFPS): what halves_scale computes, in one instruction
  static V scale2n(V p, V n) { return _mm512_scalef_ps(p, n); }
};
using Best = Avx512;
#elif defined(__AVX2__) && defined(__FMA__)
using Best = Avx2;
#else
using Best = Scalar;
#endif

template <class S>
inline typename S::V exp(typename S::V x) {
  using V = typename S::V;
  // min/max return their second operand when either is NaN: x second, so NaN stays NaN
  x = S::min(S::set(88.72283f), S::max(S::set(-87.33654f), x));
  const V n = S::round(S::mul(x, S::set(1.44269504088896341f)));
  V r = S::fma(n, S::set(-0.693359375f), x);  // ln 2 in two parts: exact n * hi
  r = S::fma(n, S::set(2.12194440e-4f), r);
  // exp(r) on [-ln2/2, ln2/2]: 1 + r + r^2 p(r), p the Cephes coefficients
  V p = S::set(1.9875691500e-4f);
  p = S::fma(p, r, S::set(1.3981999507e-3f));
  p = S::fma(p, r, S::set(8.3334519073e-3f));
  p = S::fma(p, r, S::set(4.1665795894e-2f));
  p = S::fma(p, r, S::set(1.6666665459e-1f));
  p = S::fma(p, r, S::set(5.0000001201e-1f));
  p = S::fma(p, S::mul(r, r), S::add(r, S::set(1.0f)));
  return S::scale2n(p, n);
}

template <class S>
inline typename S::V sigmoid(typename S::V x) {
  // exp's argument is clamped, so 1 + exp(-x) is finite: the reciprocal needs no guard
  return S::rcp(S::add(S::set(1.0f), exp<S>(S::sub(S::set(0.0f), x))));
}

template <class S>
inline typename S::V tanh(typename S::V x) {
  using V = typename S::V;
  const V a = S::abs(x);
  // |x| >= 0.25: 1 - 2 / (exp(2|x|) + 1), with the sign of x
  const V e = exp<S>(S::add(a, a));
  const V big = S::copysign(S::fnmadd(S::set(2.0f), S::rcp(S::add(e, S::set(1.0f))), S::set(1.0f)), x);
  // |x| < 0.25: x (1 + x^2 (-1/3 + x^2 (2/15 + x^2 (-17/315 + x^2 62/2835))))
  const V x2 = S::mul(x, x);
  V q = S::set(62.0f / 2835.0f);
  q = S::fma(q, x2, S::set(-17.0f / 315.0f));
  q = S::fma(q, x2, S::set(2.0f / 15.0f));
  q = S::fma(q, x2, S::set(-1.0f / 3.0f));
  const V small = S::mul(x, S::fma(q, x2, S::set(1.0f)));  // x (1 + ...) keeps tanh(-0) = -0
  return S::select_lt(a, S::set(0.25f), small, big);
}

// out[i] = f(in[i]) for i < n; in may alias out.
template <class S, class F>
inline void map(const float* in, float* out, int n, F f) {
  int i = 0;
  for (; i + S::N <= n; i += S::N) S::store(out + i, f(S::load(in + i)));
  if (i < n) {
    float buf[S::N] = {};
    std::memcpy(buf, in + i, (n - i) * sizeof(float));
    S::store(buf, f(S::load(buf)));
    std::memcpy(out + i, buf, (n - i) * sizeof(float));
  }
}

inline void sigmoid_n(const float* in, float* out, int n) {
  map<Best>(in, out, n, [](Best::V v) { return sigmoid<Best>(v); });
}
inline void tanh_n(const float* in, float* out, int n) {
  map<Best>(in, out, n, [](Best::V v) { return tanh<Best>(v); });
}

}  // namespace vmath
}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
