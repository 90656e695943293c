// Vectors of channels for the CPU kernels (scan, causal conv): `Lanes<T, W>` (plain loops the compiler vectorises, any
// CPU and dtype) and, where AVX-512 is compiled in, `Avx512` (16 floats, hand-picked instructions).
// Both give the same interface; the math built on it (exp, sigmoid, softplus) is written once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define SIGMA_HAVE_AVX512 1
#endif

namespace sigma {

// 2^f on [0, 1): degree-5 fit of the relative error, < 2e-7 evaluated in float.
constexpr float kExp2[6] = {0.99999994f, 0.69315308f, 0.24015361f,
                            0.05582632f, 0.00898934f, 0.00187758f};

inline float exp2_lane(float t) {
  t = std::min(std::max(t, -126.0f), 127.0f);
  const float i = std::floor(t), f = t - i;
  float p = kExp2[5];
  for (int k = 4; k >= 0; --k) p = p * f + kExp2[k];
  const int32_t bits = (static_cast<int32_t>(i) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline double exp2_lane(double t) { return std::exp2(t); }

template <typename T, int W>
struct Lanes {
  using Scalar = T;
  static constexpr int width = W;
  T v[W];

  static Lanes load(const T* p) {
    Lanes r;
    for (int i = 0; i < W; ++i) r.v[i] = p[i];
    return r;
  }
  static Lanes fill(T x) {
    Lanes r;
    for (int i = 0; i < W; ++i) r.v[i] = x;
    return r;
  }
  void store(T* p) const {
    for (int i = 0; i < W; ++i) p[i] = v[i];
  }
  T sum() const {
    T s = 0;
    for (int i = 0; i < W; ++i) s += v[i];
    return s;
  }
  template <typename F>
  friend Lanes map(const Lanes& a, const Lanes& b, F f) {
    Lanes r;
#pragma omp simd
    for (int i = 0; i < W; ++i) r.v[i] = f(a.v[i], b.v[i]);
    return r;
  }
  friend Lanes operator+(const Lanes& a, const Lanes& b) { return map(a, b, [](T x, T y) { return x + y; }); }
  friend Lanes operator-(const Lanes& a, const Lanes& b) { return map(a, b, [](T x, T y) { return x - y; }); }
  friend Lanes operator*(const Lanes& a, const Lanes& b) { return map(a, b, [](T x, T y) { return x * y; }); }
  friend Lanes operator/(const Lanes& a, const Lanes& b) { return map(a, b, [](T x, T y) { return x / y; }); }
  friend Lanes max(const Lanes& a, const Lanes& b) { return map(a, b, [](T x, T y) { return x > y ? x : y; }); }
  friend Lanes abs(const Lanes& a) { return map(a, a, [](T x, T) { return std::abs(x); }); }
  friend Lanes fma(const Lanes& a, const Lanes& b, const Lanes& c) { return a * b + c; }
  friend Lanes exp2(const Lanes& a) { return map(a, a, [](T x, T) { return exp2_lane(x); }); }
};

#ifdef SIGMA_HAVE_AVX512
struct Avx512 {
  using Scalar = float;
  static constexpr int width = 16;
  __m512 v;

  static Avx512 load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Avx512 fill(float x) { return {_mm512_set1_ps(x)}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  float sum() const { return _mm512_reduce_add_ps(v); }
  friend Avx512 operator+(Avx512 a, Avx512 b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend Avx512 operator-(Avx512 a, Avx512 b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend Avx512 operator*(Avx512 a, Avx512 b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend Avx512 operator/(Avx512 a, Avx512 b) { return {_mm512_div_ps(a.v, b.v)}; }
  friend Avx512 max(Avx512 a, Avx512 b) { return {_mm512_max_ps(a.v, b.v)}; }
  friend Avx512 abs(Avx512 a) { return {_mm512_abs_ps(a.v)}; }
  friend Avx512 fma(Avx512 a, Avx512 b, Avx512 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  // 2^t = 2^floor(t) * 2^f: vreduceps gives f = t - floor(t), vscalefps applies 2^floor(t)
  // (and returns 0 or inf outside float's range, so no clamping).
  friend Avx512 exp2(Avx512 t) {
    const __m512 f = _mm512_reduce_ps(t.v, 0x09);  // round down, exceptions suppressed
    __m512 p = _mm512_set1_ps(kExp2[5]);
    for (int k = 4; k >= 0; --k) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2[k]));
    return {_mm512_scalef_ps(p, t.v)};
  }
};
#endif

constexpr double kLog2e = 1.4426950408889634, kLn2 = 0.6931471805599453;

template <class V>
V exp(V x) {
  return exp2(x * V::fill(kLog2e));
}

template <class V>
V sigmoid(V x) {
  return V::fill(1) / (V::fill(1) + exp(V::fill(0) - x));
}

// softplus(x) = max(x, 0) + log1p(e), e = exp(-|x|) in (0, 1]; log1p(e) = 2 atanh(s) with
// s = e / (2 + e) <= 1/3, summed to s^13 (relative error < 2e-8, exact as e -> 0); float only.
template <class V>
V softplus(V x) {
  if constexpr (std::is_same_v<typename V::Scalar, double>) {  // double: libm, for exact checks
    return map(x, x, [](double a, double) { return std::max(a, 0.0) + std::log1p(std::exp(-std::abs(a))); });
  }
  const V e = exp(V::fill(0) - abs(x));
  const V s = e / (V::fill(2) + e), s2 = s * s;
  V p = V::fill(1.0 / 13);
  for (int k = 11; k >= 3; k -= 2) p = fma(p, s2, V::fill(1.0 / k));
  p = fma(p, s2, V::fill(1));
  return max(x, V::fill(0)) + V::fill(2) * s * p;
}

// The widest lanes this build and these sizes allow: AVX-512 floats, else 16 plain lanes, else one.
// `portable` skips the AVX-512 type (tests use it to check the plain-loop code on this CPU too).
template <typename T, typename F>
void with_lanes(int64_t ne, bool portable, F f) {
#ifdef SIGMA_HAVE_AVX512
  if constexpr (std::is_same_v<T, float>) {
    if (ne % 16 == 0 && !portable) return f(sigma::Avx512{});
  }
#endif
  if constexpr (std::is_same_v<T, float>) {
    if (ne % 16 == 0) return f(Lanes<float, 16>{});
  }
  f(Lanes<T, 1>{});
}

}  // namespace sigma
