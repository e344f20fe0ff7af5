// regbench fused optimizer steps: SGD (momentum, dampening, nesterov) and Adam/AdamW, with
// the elastic-net gradient `l2 * p + l1 * sign(p)` folded into the same pass.
//
// Each element's update is the reference composition, rounding step for rounding step:
//   1. grad' = grad + (l2 * p [+ sign(p) * l1])        regbench.kernels.l2_ / reference.py
//   2. torch.optim.SGD / Adam(W)'s single-tensor update (foreach=False), op by op.
// torch's CPU kernels (capability AVX2 / AVX-512) compute `add(x, alpha=a)`, `lerp` and
// `addcmul` with a fused multiply-add; `fma` = true reproduces that (std::fma / vfmadd), and
// fma = false the plain mul-then-add of a build without FMA. This file is built with
// -ffp-contract=off, so no other mul + add fuses. Every path (AVX-512, AVX2, scalar) gives the
// same bits: the ops are elementwise and IEEE, and the SIMD paths only run with fma = true.
//
// The gradient is read, never written (the reference composition writes grad' into .grad;
// the fused step keeps the caller's gradient).

#include "optim.h"

#include <ATen/Config.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#define RBO_X86 1
#include <immintrin.h>
#else
#define RBO_X86 0
#endif

#if AT_MKL_ENABLED() && !defined(__APPLE__)
// torch.sqrt on CPU tensors is MKL VML's (at::vml::vsqrt); libtorch_cpu exports these.
#define RBO_MKL 1
extern "C" void vmsSqrt(int n, const float* a, float* r, int64_t mode);
extern "C" void vmdSqrt(int n, const double* a, double* r, int64_t mode);
#else
#define RBO_MKL 0
#endif

namespace regbench_optim {
namespace {

#if RBO_MKL
constexpr int64_t kVmlMode = 0x2 | 0x140000 | 0x100;  // VML_HA | VML_FTZDAZ_OFF | ERRMODE_IGNORE
#endif

enum Isa : int64_t { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
constexpr int64_t kBlock = 4096;  // elements per work item; 8 items at least per thread chunk

template <typename T, bool F>
inline T mad(T a, T b, T c) {  // a * b + c: one rounding when F (torch's fmadd), else two
  if constexpr (F) {
    return std::fma(a, b, c);
  } else {
    return a * b + c;
  }
}

template <typename T>
inline T sign_l1(T x, T l1) {
  return x > T(0) ? l1 : (x < T(0) ? -l1 : T(0));
}

// ---------------------------------------------------------------------------------------------
// Per-call constants, already rounded to the tensor's dtype as torch rounds Python scalars.

template <typename T>
struct SgdK {
  T l2, l1, wd, mom, damp1, nlr;  // damp1 = T(1 - dampening), nlr = T(-lr)
  bool pen, has_l1, has_wd, has_mom, nesterov, init;
};

template <typename T>
struct AdamK {
  T l2, l1, wd, decay, w1, w1m1, b2, w2, bc2s, eps, nss;  // see adamw_multi
  bool pen, has_l1, coupled, decoupled, small;
};

template <typename T, bool F>
inline void sgd_elem(T* p, const T* g, T* b, int64_t j, const SgdK<T>& K) {
  const T x = p[j];
  T d = g[j];
  if (K.pen) {
    T u = K.l2 * x;
    if (K.has_l1) u = u + sign_l1(x, K.l1);
    d = d + u;
  }
  if (K.has_wd) d = mad<T, F>(x, K.wd, d);               // grad.add(param, alpha=wd)
  if (K.has_mom) {
    const T m = K.init ? d : mad<T, F>(d, K.damp1, b[j] * K.mom);  // buf.mul_(m).add_(g, a)
    b[j] = m;
    d = K.nesterov ? mad<T, F>(m, K.mom, d) : m;          // grad.add(buf, alpha=momentum)
  }
  p[j] = mad<T, F>(d, K.nlr, x);                          // param.add_(grad, alpha=-lr)
}

// With torch_sqrt, Adam runs in three sweeps over a work item that stays in L2: the moments,
// sqrt(v), the parameter. sqrt is then torch.sqrt's: with MKL (AT_MKL_ENABLED) that is MKL
// VML's vmsSqrt / vmdSqrt in high-accuracy mode, not always correctly rounded (on the AMD
// reference machine 20% of fp32 results are 1 ulp off IEEE, and it costs ~0.5 ns an element
// more than vsqrtps), so it is called here too. Without MKL, and with torch_sqrt = false, it
// is IEEE sqrt (correctly rounded) in one sweep, as torch's own fused=True Adam kernel does.
template <typename T, bool F>
inline void adam_mom_elem(const T* p, const T* g, T* m, T* v, int64_t j, const AdamK<T>& K) {
  const T x = p[j];
  T d = g[j];
  if (K.pen) {
    T u = K.l2 * x;
    if (K.has_l1) u = u + sign_l1(x, K.l1);
    d = d + u;
  }
  if (K.coupled) d = mad<T, F>(x, K.wd, d);               // Adam: grad.add(param, alpha=wd)
  const T diff = d - m[j];                                // exp_avg.lerp_(grad, 1 - beta1)
  m[j] = K.small ? mad<T, F>(K.w1, diff, m[j]) : mad<T, F>(K.w1m1, diff, d);
  v[j] = mad<T, F>(K.w2 * d, d, v[j] * K.b2);             // v.mul_(b2).addcmul_(g, g, 1 - b2)
}

template <typename T>
inline void adam_upd_val(T* p, const T* m, T sq, int64_t j, const AdamK<T>& K) {
  const T x = K.decoupled ? p[j] * K.decay : p[j];        // AdamW: param.mul_(1 - lr * wd)
  const T den = sq / K.bc2s + K.eps;                      // (v.sqrt() / bc2_sqrt).add_(eps)
  p[j] = x + (K.nss * m[j]) / den;                        // param.addcdiv_(m, den, -step_size)
}

template <typename T>
inline void adam_upd_elem(T* p, const T* m, const T* sq, int64_t j, const AdamK<T>& K) {
  adam_upd_val<T>(p, m, sq[j], j, K);
}

#if RBO_X86
#define RBO_T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define RBO_T256 __attribute__((target("avx2,fma")))

// SIMD traits: one register type per (ISA, dtype), the ops the updates need, all IEEE.
template <typename T>
struct A256;
template <>
struct A256<float> {
  using R = __m256;
  static constexpr int W = 8;
  RBO_T256 static inline R ld(const float* p) { return _mm256_loadu_ps(p); }
  RBO_T256 static inline void st(float* p, R v) { _mm256_storeu_ps(p, v); }
  RBO_T256 static inline R set(float v) { return _mm256_set1_ps(v); }
  RBO_T256 static inline R add(R a, R b) { return _mm256_add_ps(a, b); }
  RBO_T256 static inline R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  RBO_T256 static inline R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  RBO_T256 static inline R div(R a, R b) { return _mm256_div_ps(a, b); }
  RBO_T256 static inline R sqrt(R a) { return _mm256_sqrt_ps(a); }
  RBO_T256 static inline R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  RBO_T256 static inline R sgn(R x, R l1, R nl1) {
    const R z = _mm256_setzero_ps();
    return _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(x, z, _CMP_GT_OQ), l1),
                        _mm256_and_ps(_mm256_cmp_ps(x, z, _CMP_LT_OQ), nl1));
  }
};
template <>
struct A256<double> {
  using R = __m256d;
  static constexpr int W = 4;
  RBO_T256 static inline R ld(const double* p) { return _mm256_loadu_pd(p); }
  RBO_T256 static inline void st(double* p, R v) { _mm256_storeu_pd(p, v); }
  RBO_T256 static inline R set(double v) { return _mm256_set1_pd(v); }
  RBO_T256 static inline R add(R a, R b) { return _mm256_add_pd(a, b); }
  RBO_T256 static inline R sub(R a, R b) { return _mm256_sub_pd(a, b); }
  RBO_T256 static inline R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  RBO_T256 static inline R div(R a, R b) { return _mm256_div_pd(a, b); }
  RBO_T256 static inline R sqrt(R a) { return _mm256_sqrt_pd(a); }
  RBO_T256 static inline R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  RBO_T256 static inline R sgn(R x, R l1, R nl1) {
    const R z = _mm256_setzero_pd();
    return _mm256_or_pd(_mm256_and_pd(_mm256_cmp_pd(x, z, _CMP_GT_OQ), l1),
                        _mm256_and_pd(_mm256_cmp_pd(x, z, _CMP_LT_OQ), nl1));
  }
};
template <typename T>
struct A512;
template <>
struct A512<float> {
  using R = __m512;
  static constexpr int W = 16;
  RBO_T512 static inline R ld(const float* p) { return _mm512_loadu_ps(p); }
  RBO_T512 static inline void st(float* p, R v) { _mm512_storeu_ps(p, v); }
  RBO_T512 static inline R set(float v) { return _mm512_set1_ps(v); }
  RBO_T512 static inline R add(R a, R b) { return _mm512_add_ps(a, b); }
  RBO_T512 static inline R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  RBO_T512 static inline R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  RBO_T512 static inline R div(R a, R b) { return _mm512_div_ps(a, b); }
  RBO_T512 static inline R sqrt(R a) { return _mm512_sqrt_ps(a); }
  RBO_T512 static inline R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  RBO_T512 static inline R sgn(R x, R l1, R nl1) {
    const R z = _mm512_setzero_ps();
    const R s = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, z, _CMP_GT_OQ), l1);
    return _mm512_mask_mov_ps(s, _mm512_cmp_ps_mask(x, z, _CMP_LT_OQ), nl1);
  }
};
template <>
struct A512<double> {
  using R = __m512d;
  static constexpr int W = 8;
  RBO_T512 static inline R ld(const double* p) { return _mm512_loadu_pd(p); }
  RBO_T512 static inline void st(double* p, R v) { _mm512_storeu_pd(p, v); }
  RBO_T512 static inline R set(double v) { return _mm512_set1_pd(v); }
  RBO_T512 static inline R add(R a, R b) { return _mm512_add_pd(a, b); }
  RBO_T512 static inline R sub(R a, R b) { return _mm512_sub_pd(a, b); }
  RBO_T512 static inline R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  RBO_T512 static inline R div(R a, R b) { return _mm512_div_pd(a, b); }
  RBO_T512 static inline R sqrt(R a) { return _mm512_sqrt_pd(a); }
  RBO_T512 static inline R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  RBO_T512 static inline R sgn(R x, R l1, R nl1) {
    const R z = _mm512_setzero_pd();
    const R s = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, z, _CMP_GT_OQ), l1);
    return _mm512_mask_mov_pd(s, _mm512_cmp_pd_mask(x, z, _CMP_LT_OQ), nl1);
  }
};

// The SIMD bodies: the scalar element functions above, lane-wise (always with FMA).
#define RBO_SGD_BODY(V)                                                                     \
  using R = typename V::R;                                                                  \
  const R l2 = V::set(K.l2), l1 = V::set(K.l1), nl1 = V::set(-K.l1), wd = V::set(K.wd);     \
  const R mom = V::set(K.mom), damp1 = V::set(K.damp1), nlr = V::set(K.nlr);                \
  /* flags as locals: a store through p or b cannot change them, so -O3 unswitches */       \
  const bool pen = K.pen, has_l1 = K.has_l1, has_wd = K.has_wd, has_mom = K.has_mom;        \
  const bool init = K.init, nesterov = K.nesterov;                                          \
  int64_t j = 0;                                                                            \
  for (; j + V::W <= len; j += V::W) {                                                      \
    const R x = V::ld(p + j);                                                               \
    R d = V::ld(g + j);                                                                     \
    if (pen) {                                                                              \
      R u = V::mul(l2, x);                                                                  \
      if (has_l1) u = V::add(u, V::sgn(x, l1, nl1));                                        \
      d = V::add(d, u);                                                                     \
    }                                                                                       \
    if (has_wd) d = V::fma(x, wd, d);                                                       \
    if (has_mom) {                                                                          \
      const R m = init ? d : V::fma(d, damp1, V::mul(V::ld(b + j), mom));                   \
      V::st(b + j, m);                                                                      \
      d = nesterov ? V::fma(m, mom, d) : m;                                                 \
    }                                                                                       \
    V::st(p + j, V::fma(d, nlr, x));                                                        \
  }                                                                                         \
  for (; j < len; ++j) sgd_elem<T, true>(p, g, b, j, K);

#define RBO_ADAM_MOM_BODY(V)                                                                \
  using R = typename V::R;                                                                  \
  const R l2 = V::set(K.l2), l1 = V::set(K.l1), nl1 = V::set(-K.l1), wd = V::set(K.wd);     \
  const R w1 = V::set(K.small ? K.w1 : K.w1m1), b2 = V::set(K.b2), w2 = V::set(K.w2);       \
  const bool pen = K.pen, has_l1 = K.has_l1, coupled = K.coupled, small = K.small;          \
  int64_t j = 0;                                                                            \
  for (; j + V::W <= len; j += V::W) {                                                      \
    const R x = V::ld(p + j);                                                               \
    R d = V::ld(g + j);                                                                     \
    if (pen) {                                                                              \
      R u = V::mul(l2, x);                                                                  \
      if (has_l1) u = V::add(u, V::sgn(x, l1, nl1));                                        \
      d = V::add(d, u);                                                                     \
    }                                                                                       \
    if (coupled) d = V::fma(x, wd, d);                                                      \
    const R m0 = V::ld(m + j);                                                              \
    V::st(m + j, V::fma(w1, V::sub(d, m0), small ? m0 : d));                                \
    V::st(v + j, V::fma(V::mul(w2, d), d, V::mul(V::ld(v + j), b2)));                       \
  }                                                                                         \
  for (; j < len; ++j) adam_mom_elem<T, true>(p, g, m, v, j, K);

#define RBO_ADAM_UPD_BODY(V)                                                                \
  using R = typename V::R;                                                                  \
  const R decay = V::set(K.decay), bc2s = V::set(K.bc2s), eps = V::set(K.eps);              \
  const R nss = V::set(K.nss);                                                              \
  const bool decoupled = K.decoupled;                                                       \
  int64_t j = 0;                                                                            \
  for (; j + V::W <= len; j += V::W) {                                                      \
    R x = V::ld(p + j);                                                                     \
    if (decoupled) x = V::mul(x, decay);                                                    \
    const R den = V::add(V::div(V::ld(sq + j), bc2s), eps);                                 \
    V::st(p + j, V::add(x, V::div(V::mul(nss, V::ld(m + j)), den)));                        \
  }                                                                                         \
  for (; j < len; ++j) adam_upd_elem<T>(p, m, sq, j, K);

template <typename T>
RBO_T256 void sgd_block256(T* p, const T* g, T* b, int64_t len, const SgdK<T>& K) {
  RBO_SGD_BODY(A256<T>)
}
template <typename T>
RBO_T512 void sgd_block512(T* p, const T* g, T* b, int64_t len, const SgdK<T>& K) {
  RBO_SGD_BODY(A512<T>)
}
// One sweep (IEEE sqrt inline): the moments and the parameter of each vector in registers.
#define RBO_ADAM_ONE_BODY(V)                                                                \
  using R = typename V::R;                                                                  \
  const R l2 = V::set(K.l2), l1 = V::set(K.l1), nl1 = V::set(-K.l1), wd = V::set(K.wd);     \
  const R w1 = V::set(K.small ? K.w1 : K.w1m1), b2 = V::set(K.b2), w2 = V::set(K.w2);       \
  const R decay = V::set(K.decay), bc2s = V::set(K.bc2s), eps = V::set(K.eps);              \
  const R nss = V::set(K.nss);                                                              \
  const bool pen = K.pen, has_l1 = K.has_l1, coupled = K.coupled, small = K.small;          \
  const bool decoupled = K.decoupled;                                                       \
  int64_t j = 0;                                                                            \
  for (; j + V::W <= len; j += V::W) {                                                      \
    R x = V::ld(p + j);                                                                     \
    R d = V::ld(g + j);                                                                     \
    if (pen) {                                                                              \
      R u = V::mul(l2, x);                                                                  \
      if (has_l1) u = V::add(u, V::sgn(x, l1, nl1));                                        \
      d = V::add(d, u);                                                                     \
    }                                                                                       \
    if (coupled) d = V::fma(x, wd, d);                                                      \
    const R m0 = V::ld(m + j);                                                              \
    const R mm = V::fma(w1, V::sub(d, m0), small ? m0 : d);                                 \
    V::st(m + j, mm);                                                                       \
    const R vv = V::fma(V::mul(w2, d), d, V::mul(V::ld(v + j), b2));                        \
    V::st(v + j, vv);                                                                       \
    if (decoupled) x = V::mul(x, decay);                                                    \
    const R den = V::add(V::div(V::sqrt(vv), bc2s), eps);                                   \
    V::st(p + j, V::add(x, V::div(V::mul(nss, mm), den)));                                  \
  }                                                                                         \
  for (; j < len; ++j) {                                                                    \
    adam_mom_elem<T, true>(p, g, m, v, j, K);                                               \
    adam_upd_val<T>(p, m, std::sqrt(v[j]), j, K);                                           \
  }

template <typename T>
RBO_T256 void adam_one256(T* p, const T* g, T* m, T* v, int64_t len, const AdamK<T>& K) {
  RBO_ADAM_ONE_BODY(A256<T>)
}
template <typename T>
RBO_T512 void adam_one512(T* p, const T* g, T* m, T* v, int64_t len, const AdamK<T>& K) {
  RBO_ADAM_ONE_BODY(A512<T>)
}

template <typename T>
RBO_T256 void adam_mom256(const T* p, const T* g, T* m, T* v, int64_t len, const AdamK<T>& K) {
  RBO_ADAM_MOM_BODY(A256<T>)
}
template <typename T>
RBO_T512 void adam_mom512(const T* p, const T* g, T* m, T* v, int64_t len, const AdamK<T>& K) {
  RBO_ADAM_MOM_BODY(A512<T>)
}
template <typename T>
RBO_T256 void adam_upd256(T* p, const T* m, const T* sq, int64_t len, const AdamK<T>& K) {
  RBO_ADAM_UPD_BODY(A256<T>)
}
template <typename T>
RBO_T512 void adam_upd512(T* p, const T* m, const T* sq, int64_t len, const AdamK<T>& K) {
  RBO_ADAM_UPD_BODY(A512<T>)
}
#endif

template <typename T>
void sgd_block(T* p, const T* g, T* b, int64_t len, const SgdK<T>& K, bool fma, int64_t isa) {
#if RBO_X86
  if (fma && isa == kAvx512) return sgd_block512<T>(p, g, b, len, K);
  if (fma && isa == kAvx2) return sgd_block256<T>(p, g, b, len, K);
#endif
  (void)isa;
  if (fma) {
    for (int64_t j = 0; j < len; ++j) sgd_elem<T, true>(p, g, b, j, K);
  } else {
    for (int64_t j = 0; j < len; ++j) sgd_elem<T, false>(p, g, b, j, K);
  }
}

template <typename T>
void sqrt_block(const T* v, T* out, int64_t len, bool mkl) {
#if RBO_MKL
  if (mkl) {
    if constexpr (std::is_same_v<T, float>) {
      vmsSqrt(static_cast<int>(len), v, out, kVmlMode);
    } else {
      vmdSqrt(static_cast<int>(len), v, out, kVmlMode);
    }
    return;
  }
#endif
  (void)mkl;
  for (int64_t j = 0; j < len; ++j) out[j] = std::sqrt(v[j]);  // IEEE (vectorized by -O3)
}

template <typename T>
void adam_block(T* p, const T* g, T* m, T* v, int64_t len, const AdamK<T>& K, bool fma,
                bool mkl, int64_t isa) {
#if RBO_X86
  if (fma && !mkl && isa == kAvx512) return adam_one512<T>(p, g, m, v, len, K);
  if (fma && !mkl && isa == kAvx2) return adam_one256<T>(p, g, m, v, len, K);
#endif
  // MKL's sqrt is called per sub-block (~1 us a call); a whole work item per call measured
  // ~6% faster than 1024-element sub-blocks, its five arrays (80 KiB fp32) still in L2
  constexpr int64_t kSub = kBlock;
  alignas(64) T sq[kSub];
  for (int64_t o = 0; o < len; o += kSub) {
    const int64_t n = std::min(kSub, len - o);
    T *po = p + o, *mo = m + o, *vo = v + o;
    const T* go = g + o;
#if RBO_X86
    if (fma && isa == kAvx512) {
      adam_mom512<T>(po, go, mo, vo, n, K);
    } else if (fma && isa == kAvx2) {
      adam_mom256<T>(po, go, mo, vo, n, K);
    } else
#endif
    if (fma) {
      for (int64_t j = 0; j < n; ++j) adam_mom_elem<T, true>(po, go, mo, vo, j, K);
    } else {
      for (int64_t j = 0; j < n; ++j) adam_mom_elem<T, false>(po, go, mo, vo, j, K);
    }
    sqrt_block<T>(vo, sq, n, mkl);
#if RBO_X86
    if (isa == kAvx512) {
      adam_upd512<T>(po, mo, sq, n, K);
      continue;
    }
    if (isa == kAvx2) {
      adam_upd256<T>(po, mo, sq, n, K);
      continue;
    }
#endif
    (void)isa;
    for (int64_t j = 0; j < n; ++j) adam_upd_elem<T>(po, mo, sq, j, K);
  }
}

// ---------------------------------------------------------------------------------------------
// Multi-tensor driver: every tensor cut into kBlock-element items, one parallel_for over all.

void check_isa(int64_t isa) {
  TORCH_CHECK(isa >= kScalar && isa <= kAvx512, "regbench optim: unknown isa ", isa);
#if RBO_X86
  __builtin_cpu_init();
  TORCH_CHECK(isa != kAvx512 || (__builtin_cpu_supports("avx512f") &&
                                 __builtin_cpu_supports("avx512dq")),
              "regbench optim: this CPU has no AVX-512");
  TORCH_CHECK(isa != kAvx2 || (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")),
              "regbench optim: this CPU has no AVX2/FMA");
#else
  TORCH_CHECK(isa == kScalar, "regbench optim: SIMD paths need x86-64");
#endif
}

// Tensors this file runs: contiguous float32/float64 CPU tensors, state shaped like the
// parameter. Others are skipped and their indices returned (the caller runs the reference).
bool like(const at::Tensor& t, const at::Tensor& p) {
  return t.device().is_cpu() && t.scalar_type() == p.scalar_type() && t.sizes() == p.sizes() &&
         t.is_contiguous();
}

bool native_param(const at::Tensor& p) {
  return p.device().is_cpu() && p.is_contiguous() &&
         (p.scalar_type() == at::kFloat || p.scalar_type() == at::kDouble);
}

std::vector<at::Tensor> pick(const std::vector<at::Tensor>& ts,
                                const std::vector<int64_t>& idx) {
  std::vector<at::Tensor> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(ts[static_cast<size_t>(i)]);
  return out;
}

template <typename Fn>
void for_blocks(const std::vector<at::Tensor>& params, Fn fn) {
  const size_t nt = params.size();
  std::vector<int64_t> first(nt + 1, 0);
  for (size_t i = 0; i < nt; ++i) first[i + 1] = first[i] + (params[i].numel() + kBlock - 1) / kBlock;
  at::parallel_for(0, first[nt], 8, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const size_t t = static_cast<size_t>(
          std::upper_bound(first.begin(), first.end(), b) - first.begin() - 1);
      const int64_t e0 = (b - first[t]) * kBlock;
      fn(t, e0, std::min(kBlock, params[t].numel() - e0));
    }
  });
}

template <typename T>
SgdK<T> sgd_consts(double lr, double momentum, double dampening, bool nesterov, double wd,
                   double l2, double l1, bool init) {
  return SgdK<T>{static_cast<T>(l2), static_cast<T>(l1), static_cast<T>(wd),
                 static_cast<T>(momentum), static_cast<T>(1.0 - dampening),
                 static_cast<T>(-lr), l2 != 0.0 || l1 != 0.0, l1 != 0.0, wd != 0.0,
                 momentum != 0.0, nesterov, init};
}

template <typename T>
AdamK<T> adam_consts(double step, double lr, double beta1, double beta2, double eps, double wd,
                     bool decoupled, double l2, double l1) {
  // As torch.optim.Adam (capturable=False) in Python floats: bias_correction1 = 1 - beta1**step,
  // step_size = lr / bias_correction1, bias_correction2_sqrt = (1 - beta2**step) ** 0.5.
  const double bc1 = 1.0 - std::pow(beta1, step);
  const double step_size = lr / bc1;
  const double bc2s = std::pow(1.0 - std::pow(beta2, step), 0.5);
  const T w1 = static_cast<T>(1.0 - beta1);
  return AdamK<T>{static_cast<T>(l2), static_cast<T>(l1), static_cast<T>(wd),
                  static_cast<T>(1.0 - lr * wd), w1, static_cast<T>(w1 - T(1)),
                  static_cast<T>(beta2), static_cast<T>(1.0 - beta2), static_cast<T>(bc2s),
                  static_cast<T>(eps), static_cast<T>(-step_size), l2 != 0.0 || l1 != 0.0,
                  l1 != 0.0, wd != 0.0 && !decoupled, wd != 0.0 && decoupled,
                  std::fabs(w1) < T(0.5)};
}

}  // namespace

std::vector<int64_t> sgd_multi(const std::vector<at::Tensor>& params_in,
                               const std::vector<at::Tensor>& grads_in,
                               const std::vector<at::Tensor>& bufs_in, double lr,
                               double momentum, double dampening, bool nesterov,
                               double weight_decay, double l2, double l1, bool init_bufs,
                               bool fma32, bool fma64, int64_t isa) {
  check_isa(isa);
  const size_t nt = params_in.size();
  const bool mom = momentum != 0.0;
  TORCH_CHECK(grads_in.size() == nt, "regbench optim: ", grads_in.size(), " grads for ", nt,
              " params");
  TORCH_CHECK(!mom || bufs_in.size() == nt, "regbench optim: ", bufs_in.size(),
              " momentum buffers for ", nt, " params");
  std::vector<int64_t> run, skipped;
  for (size_t i = 0; i < nt; ++i) {
    const bool ok = native_param(params_in[i]) && like(grads_in[i], params_in[i]) &&
                    (!mom || like(bufs_in[i], params_in[i]));
    (ok ? run : skipped).push_back(static_cast<int64_t>(i));
  }
  const auto params = pick(params_in, run), grads = pick(grads_in, run);
  const auto bufs = mom ? pick(bufs_in, run) : std::vector<at::Tensor>{};
  const auto kf = sgd_consts<float>(lr, momentum, dampening, nesterov, weight_decay, l2, l1,
                                    init_bufs);
  const auto kd = sgd_consts<double>(lr, momentum, dampening, nesterov, weight_decay, l2, l1,
                                     init_bufs);
  for_blocks(params, [&](size_t t, int64_t e0, int64_t len) {
    if (params[t].scalar_type() == at::kFloat) {
      sgd_block<float>(params[t].data_ptr<float>() + e0, grads[t].const_data_ptr<float>() + e0,
                       mom ? bufs[t].data_ptr<float>() + e0 : nullptr, len, kf, fma32, isa);
    } else {
      sgd_block<double>(params[t].data_ptr<double>() + e0,
                        grads[t].const_data_ptr<double>() + e0,
                        mom ? bufs[t].data_ptr<double>() + e0 : nullptr, len, kd, fma64, isa);
    }
  });
  return skipped;
}

std::vector<int64_t> adamw_multi(const std::vector<at::Tensor>& params_in,
                                 const std::vector<at::Tensor>& grads_in,
                                 const std::vector<at::Tensor>& exp_avgs_in,
                                 const std::vector<at::Tensor>& exp_avg_sqs_in,
                                 const std::vector<at::Tensor>& steps_in, double lr,
                                 double beta1, double beta2, double eps, double weight_decay,
                                 bool decoupled, double l2, double l1, bool fma32, bool fma64,
                                 bool torch_sqrt, int64_t isa) {
  check_isa(isa);
  const size_t nt = params_in.size();
  TORCH_CHECK(grads_in.size() == nt && exp_avgs_in.size() == nt && exp_avg_sqs_in.size() == nt &&
                  steps_in.size() == nt,
              "regbench optim: adamw_multi needs one grad, exp_avg, exp_avg_sq and step per "
              "parameter");
  std::vector<int64_t> run, skipped;
  for (size_t i = 0; i < nt; ++i) {
    const auto& s = steps_in[i];
    const bool ok = native_param(params_in[i]) && like(grads_in[i], params_in[i]) &&
                    like(exp_avgs_in[i], params_in[i]) && like(exp_avg_sqs_in[i], params_in[i]) &&
                    s.device().is_cpu() && s.numel() == 1 &&
                    (s.scalar_type() == at::kFloat || s.scalar_type() == at::kDouble);
    (ok ? run : skipped).push_back(static_cast<int64_t>(i));
  }
  const auto params = pick(params_in, run), grads = pick(grads_in, run);
  const auto exp_avgs = pick(exp_avgs_in, run), exp_avg_sqs = pick(exp_avg_sqs_in, run);
  const auto steps = pick(steps_in, run);
  const size_t nr = params.size();
  std::vector<AdamK<float>> kf(nr);
  std::vector<AdamK<double>> kd(nr);
  for (size_t i = 0; i < nr; ++i) {
    const auto& s = steps[i];
    double step;
    if (s.scalar_type() == at::kFloat) {  // step_t += 1, then _get_value(step_t) (a double)
      float* sp = s.data_ptr<float>();
      *sp = *sp + 1.0f;
      step = static_cast<double>(*sp);
    } else {
      double* sp = s.data_ptr<double>();
      *sp = *sp + 1.0;
      step = *sp;
    }
    if (params[i].scalar_type() == at::kFloat) {
      kf[i] = adam_consts<float>(step, lr, beta1, beta2, eps, weight_decay, decoupled, l2, l1);
    } else {
      kd[i] = adam_consts<double>(step, lr, beta1, beta2, eps, weight_decay, decoupled, l2, l1);
    }
  }
  for_blocks(params, [&](size_t t, int64_t e0, int64_t len) {
    if (params[t].scalar_type() == at::kFloat) {
      adam_block<float>(params[t].data_ptr<float>() + e0, grads[t].const_data_ptr<float>() + e0,
                        exp_avgs[t].data_ptr<float>() + e0,
                        exp_avg_sqs[t].data_ptr<float>() + e0, len, kf[t], fma32, torch_sqrt,
                        isa);
    } else {
      adam_block<double>(params[t].data_ptr<double>() + e0,
                         grads[t].const_data_ptr<double>() + e0,
                         exp_avgs[t].data_ptr<double>() + e0,
                         exp_avg_sqs[t].data_ptr<double>() + e0, len, kd[t], fma64, torch_sqrt,
                         isa);
    }
  });
  return skipped;
}

}  // namespace regbench_optim
