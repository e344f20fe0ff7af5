// regbench fused CPU kernels: counter-based dropout (Philox4x32-10) and fused L2 / elastic net.
//
// Contract: /work/shared/DESIGN.md and regbench/kernels/reference.py. Every path (AVX-512,
// AVX2, scalar) produces the same bits. AVX-512 / AVX2 code is compiled with per-function
// target attributes and picked at run time, so this file builds with plain -O3 and the
// result still runs on CPUs without those instruction sets. Build with -ffp-contract=off:
// a fused multiply-add would change the rounding the contract fixes.

#include <torch/extension.h>

#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define RB_X86 1
#include <immintrin.h>
#else
#define RB_X86 0
#endif

namespace {

constexpr uint32_t kM0 = 0xD2511F53u;
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;
constexpr uint32_t kW1 = 0xBB67AE85u;

enum Isa : int64_t { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

bool cpu_has_avx2() {
#if RB_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if RB_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         cpu_has_avx2();
#else
  return false;
#endif
}

void check_isa(int64_t isa) {
  TORCH_CHECK(isa >= kScalar && isa <= kAvx512, "regbench: unknown isa ", isa);
  TORCH_CHECK(isa != kAvx512 || cpu_has_avx512(), "regbench: this CPU has no AVX-512");
  TORCH_CHECK(isa != kAvx2 || cpu_has_avx2(), "regbench: this CPU has no AVX2");
}

// ---------------------------------------------------------------------------------------------
// Scalar Philox4x32-10 (Random123), and scalar element conversions.

inline void philox_scalar(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    const uint32_t n0 = hi1 ^ c[1] ^ k0;
    const uint32_t n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
    k0 += kW0;
    k1 += kW1;
  }
}

template <typename T>
inline float to_f(T v) {
  return static_cast<float>(v);
}

inline uint16_t bf16_bits(float f) {  // round to nearest even, NaN -> 0x7fc0 (as c10::BFloat16)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return 0x7fc0;
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

template <typename T>
inline T from_f(float f) {
  return static_cast<T>(f);
}
template <>
inline c10::BFloat16 from_f<c10::BFloat16>(float f) {
  return c10::BFloat16(bf16_bits(f), c10::BFloat16::from_bits());
}

struct DropParams {
  uint32_t k0, k1;
  uint64_t offset;    // counter of element 0
  uint32_t thresh;    // keep iff (r >> 8) >= thresh; thresh in [0, 2^24]
  float scale;        // float32(1 / (1 - p)), 0 when p == 1
  int64_t numel;
  int64_t hdim;       // last dim (bias broadcast), >= 1
};

// One element: y = cast([float(x) + float(b)] * s if kept else 0 [+ float(r)]).
template <typename T, bool HasBias, bool HasRes>
inline T drop_elem(T x, T b, T r, uint32_t word, const DropParams& P) {
  float h = to_f(x);
  if (HasBias) h = h + to_f(b);
  float d = ((word >> 8) >= P.thresh) ? h * P.scale : 0.0f;
  if (HasRes) d = d + to_f(r);
  return from_f<T>(d);
}

template <bool HasBias, bool HasRes>
inline double drop_elem_f64(double x, double b, double r, uint32_t word, const DropParams& P) {
  double h = x;
  if (HasBias) h = h + b;
  double d = ((word >> 8) >= P.thresh) ? h * static_cast<double>(P.scale) : 0.0;
  if (HasRes) d = d + r;
  return d;
}

// Scalar path over elements [e0, e1), e0 a multiple of 4.
template <typename T, bool HasBias, bool HasRes>
void drop_range_scalar(const T* x, const T* bias, const T* res, T* y, int64_t e0, int64_t e1,
                       const DropParams& P) {
  for (int64_t e = e0; e < e1; e += 4) {
    const uint64_t n = P.offset + static_cast<uint64_t>(e / 4);
    uint32_t c[4] = {static_cast<uint32_t>(n), static_cast<uint32_t>(n >> 32), 0u, 0u};
    philox_scalar(c, P.k0, P.k1);
    const int64_t m = std::min<int64_t>(4, e1 - e);
    for (int64_t w = 0; w < m; ++w) {
      const int64_t j = e + w;
      const T b = HasBias ? bias[j % P.hdim] : T(0);
      const T r = HasRes ? res[j] : T(0);
      if constexpr (std::is_same_v<T, double>) {
        y[j] = drop_elem_f64<HasBias, HasRes>(x[j], b, r, c[w], P);
      } else {
        y[j] = drop_elem<T, HasBias, HasRes>(x[j], b, r, c[w], P);
      }
    }
  }
}

#if RB_X86
// ---------------------------------------------------------------------------------------------
// AVX-512: G groups of 8 counters per batch -> 32 * G elements.
//
// A counter's words live in the low halves of 64-bit lanes (one vector per word, the high half
// is garbage that _mm512_mul_epu32 ignores), so a Philox round is a multiply, a shift and a
// three-way xor per product. One group's round is a chain of about 5 cycles of latency; G
// independent groups keep the vector pipes busy (measured on Zen 5: 0.22 ns per element with
// G = 2, 0.15 with G = 6).

#define RB_T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define RB_T256 __attribute__((target("avx2,fma,f16c")))

template <int G>
RB_T512 static inline void philox512(__m512i c[4][G], uint32_t k0, uint32_t k1) {
  const __m512i m0 = _mm512_set1_epi64(kM0);
  const __m512i m1 = _mm512_set1_epi64(kM1);
#pragma GCC unroll 10
  for (int r = 0; r < 10; ++r) {
    const __m512i key0 = _mm512_set1_epi32(static_cast<int>(k0));
    const __m512i key1 = _mm512_set1_epi32(static_cast<int>(k1));
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m512i p0 = _mm512_mul_epu32(c[0][g], m0);
      const __m512i p1 = _mm512_mul_epu32(c[2][g], m1);
      c[0][g] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p1, 32), c[1][g], key0, 0x96);
      c[2][g] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p0, 32), c[3][g], key1, 0x96);
      c[1][g] = p1;
      c[3][g] = p0;
    }
    k0 += kW0;
    k1 += kW1;
  }
}

// Random words of counters n0 .. n0 + 8G - 1 in element order: out[2g], out[2g + 1] hold
// elements 32g .. 32g + 31. 64-bit lane 2i of group g runs counter 8g + i and lane 2i + 1
// counter 8g + 4 + i, so pairing words (0, 1) and (2, 3) and one 64-bit unpack per half puts
// each counter's four words side by side, in counter order.
template <int G>
RB_T512 static inline void words512(uint64_t n0, uint32_t k0, uint32_t k1, __m512i out[2 * G]) {
  const __m512i lane = _mm512_setr_epi64(0, 4, 1, 5, 2, 6, 3, 7);
  __m512i c[4][G];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
    const __m512i n = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(n0 + 8 * g)),
                                       lane);
    c[0][g] = n;
    c[1][g] = _mm512_srli_epi64(n, 32);
    c[2][g] = _mm512_setzero_si512();
    c[3][g] = _mm512_setzero_si512();
  }
  philox512<G>(c, k0, k1);
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
    // odd 32-bit slots take the even slot of the next word: (w0, w1) and (w2, w3) per lane
    const __m512i w01 = _mm512_mask_shuffle_epi32(c[0][g], 0xAAAA, c[1][g], _MM_PERM_CDAB);
    const __m512i w23 = _mm512_mask_shuffle_epi32(c[2][g], 0xAAAA, c[3][g], _MM_PERM_CDAB);
    out[2 * g] = _mm512_unpacklo_epi64(w01, w23);
    out[2 * g + 1] = _mm512_unpackhi_epi64(w01, w23);
  }
}

template <typename T>
struct V512;
template <>
struct V512<float> {
  RB_T512 static inline __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  RB_T512 static inline void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
  RB_T512 static inline void stream(float* p, __m512 v) { _mm512_stream_ps(p, v); }
};
template <>
struct V512<c10::BFloat16> {
  RB_T512 static inline __m512 load(const c10::BFloat16* p) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
  }
  RB_T512 static inline __m256i cvt(__m512 f) {
    const __m512i u = _mm512_castps_si512(f);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
    r = _mm512_srli_epi32(r, 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    r = _mm512_mask_blend_epi32(nan, r, _mm512_set1_epi32(0x7fc0));
    return _mm512_cvtepi32_epi16(r);
  }
  RB_T512 static inline void store(c10::BFloat16* p, __m512 v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), cvt(v));
  }
  RB_T512 static inline void stream(c10::BFloat16* p, __m512 v) { store(p, v); }
};
template <>
struct V512<c10::Half> {
  RB_T512 static inline __m512 load(const c10::Half* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  RB_T512 static inline void store(c10::Half* p, __m512 v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  RB_T512 static inline void stream(c10::Half* p, __m512 v) { store(p, v); }
};

// One full batch of 32 * G elements starting at x (bias: values aligned with x, or unused).
template <int G, typename T, bool HasBias, bool HasRes, bool Stream>
RB_T512 static inline void drop_batch512(const T* x, const T* b, const T* r, T* y, uint64_t n0,
                                         const DropParams& P) {
  __m512i w[2 * G];
  words512<G>(n0, P.k0, P.k1, w);
  const __m512 s = _mm512_set1_ps(P.scale);
  // (r >> 8) >= thresh  <=>  r >= thresh << 8, except thresh == 2^24 (p = 1): nothing kept
  const __m512i t = _mm512_set1_epi32(static_cast<int>(P.thresh << 8));
  const __mmask16 any = P.thresh >= (1u << 24) ? 0 : 0xFFFF;
#pragma GCC unroll 16
  for (int q = 0; q < 2 * G; ++q) {
    const __mmask16 keep = _mm512_mask_cmpge_epu32_mask(any, w[q], t);
    __m512 h = V512<T>::load(x + 16 * q);
    if (HasBias) h = _mm512_add_ps(h, V512<T>::load(b + 16 * q));
    __m512 d = _mm512_maskz_mul_ps(keep, h, s);
    if (HasRes) d = _mm512_add_ps(d, V512<T>::load(r + 16 * q));
    if (Stream) {
      V512<T>::stream(y + 16 * q, d);
    } else {
      V512<T>::store(y + 16 * q, d);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// AVX2: 8 counters per batch -> 32 elements.

RB_T256 static inline void mulhilo256(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i pe = _mm256_mul_epu32(a, m);
  const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

// G independent groups of 8 counters (one 32-bit lane each), interleaved for the same reason
// as philox512.
template <int G>
RB_T256 static inline void philox256(__m256i c[4][G], uint32_t k0, uint32_t k1) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kM1));
#pragma GCC unroll 10
  for (int r = 0; r < 10; ++r) {
    const __m256i key0 = _mm256_set1_epi32(static_cast<int>(k0));
    const __m256i key1 = _mm256_set1_epi32(static_cast<int>(k1));
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo256(c[0][g], m0, hi0, lo0);
      mulhilo256(c[2][g], m1, hi1, lo1);
      c[0][g] = _mm256_xor_si256(_mm256_xor_si256(hi1, c[1][g]), key0);
      c[1][g] = lo1;
      c[2][g] = _mm256_xor_si256(_mm256_xor_si256(hi0, c[3][g]), key1);
      c[3][g] = lo0;
    }
    k0 += kW0;
    k1 += kW1;
  }
}

// Group g covers counters n0 + 8g .. n0 + 8g + 7: out[4g + q] holds its elements 8q .. 8q + 7.
// Lane 4k + q gets counter n0 + 8g + 2q + k.
template <int G>
RB_T256 static inline void words256(uint64_t n0, uint32_t k0, uint32_t k1, __m256i out[4 * G]) {
  const __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  __m256i c[4][G];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) {
    const uint64_t ng = n0 + 8 * static_cast<uint64_t>(g);
    const __m256i lo = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(ng)), perm);
    // unsigned lo < perm  <=>  signed (lo ^ sign) < (perm ^ sign); all-ones where it wrapped
    const __m256i carry =
        _mm256_cmpgt_epi32(_mm256_xor_si256(perm, sign), _mm256_xor_si256(lo, sign));
    c[0][g] = lo;
    c[1][g] = _mm256_sub_epi32(_mm256_set1_epi32(static_cast<int>(ng >> 32)), carry);
    c[2][g] = _mm256_setzero_si256();
    c[3][g] = _mm256_setzero_si256();
  }
  philox256<G>(c, k0, k1);
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) {
    const __m256i t0 = _mm256_unpacklo_epi32(c[0][g], c[1][g]);
    const __m256i t1 = _mm256_unpackhi_epi32(c[0][g], c[1][g]);
    const __m256i t2 = _mm256_unpacklo_epi32(c[2][g], c[3][g]);
    const __m256i t3 = _mm256_unpackhi_epi32(c[2][g], c[3][g]);
    out[4 * g] = _mm256_unpacklo_epi64(t0, t2);
    out[4 * g + 1] = _mm256_unpackhi_epi64(t0, t2);
    out[4 * g + 2] = _mm256_unpacklo_epi64(t1, t3);
    out[4 * g + 3] = _mm256_unpackhi_epi64(t1, t3);
  }
}

template <typename T>
struct V256;
template <>
struct V256<float> {
  RB_T256 static inline __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  RB_T256 static inline void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
  RB_T256 static inline void stream(float* p, __m256 v) { _mm256_stream_ps(p, v); }
};
template <>
struct V256<c10::BFloat16> {
  RB_T256 static inline __m256 load(const c10::BFloat16* p) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
  }
  RB_T256 static inline void store(c10::BFloat16* p, __m256 f) {
    const __m256i u = _mm256_castps_si256(f);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
    r = _mm256_srli_epi32(r, 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7fc0), nan);
    // pack 8 x u32 (each < 2^16) into 8 x u16
    const __m128i lo = _mm256_castsi256_si128(r);
    const __m128i hi = _mm256_extracti128_si256(r, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_packus_epi32(lo, hi));
  }
  RB_T256 static inline void stream(c10::BFloat16* p, __m256 v) { store(p, v); }
};
template <>
struct V256<c10::Half> {
  RB_T256 static inline __m256 load(const c10::Half* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  RB_T256 static inline void store(c10::Half* p, __m256 v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  RB_T256 static inline void stream(c10::Half* p, __m256 v) { store(p, v); }
};

template <int G, typename T, bool HasBias, bool HasRes, bool Stream>
RB_T256 static inline void drop_batch256(const T* x, const T* b, const T* r, T* y, uint64_t n0,
                                         const DropParams& P) {
  __m256i w[4 * G];
  words256<G>(n0, P.k0, P.k1, w);
  const __m256 s = _mm256_set1_ps(P.scale);
  // (r >> 8) >= thresh  <=>  (r >> 8) > thresh - 1 (both sides fit in a signed int32)
  const __m256i tm1 = _mm256_set1_epi32(static_cast<int>(P.thresh) - 1);
#pragma GCC unroll 16
  for (int q = 0; q < 4 * G; ++q) {
    const __m256 keep =
        _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_srli_epi32(w[q], 8), tm1));
    __m256 h = V256<T>::load(x + 8 * q);
    if (HasBias) h = _mm256_add_ps(h, V256<T>::load(b + 8 * q));
    __m256 d = _mm256_and_ps(keep, _mm256_mul_ps(h, s));
    if (HasRes) d = _mm256_add_ps(d, V256<T>::load(r + 8 * q));
    if (Stream) {
      V256<T>::stream(y + 8 * q, d);
    } else {
      V256<T>::store(y + 8 * q, d);
    }
  }
}

// Low 32 bits of the 8 lanes of a, then of b -> 16 x u32.
RB_T512 static inline __m512i pack_lo512(__m512i a, __m512i b) {
  const __m512i idx =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return _mm512_permutex2var_epi32(a, idx, b);
}

RB_T512 static void philox_block512(uint32_t in[4][16], uint32_t k0, uint32_t k1) {
  __m512i c[4][2];
  for (int w = 0; w < 4; ++w) {
    for (int g = 0; g < 2; ++g) {
      c[w][g] = _mm512_cvtepu32_epi64(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in[w] + 8 * g)));
    }
  }
  philox512<2>(c, k0, k1);
  for (int w = 0; w < 4; ++w) _mm512_storeu_si512(in[w], pack_lo512(c[w][0], c[w][1]));
}

RB_T256 static void philox_block256(uint32_t in[4][8], uint32_t k0, uint32_t k1) {
  __m256i v[4][1];
  for (int w = 0; w < 4; ++w) v[w][0] = _mm256_loadu_si256(reinterpret_cast<__m256i*>(in[w]));
  philox256<1>(v, k0, k1);
  for (int w = 0; w < 4; ++w) _mm256_storeu_si256(reinterpret_cast<__m256i*>(in[w]), v[w][0]);
}

// Batches [b0, b1) of B elements each through the batch function; the last partial batch
// goes through zero-padded stack buffers. Bias rows that wrap inside a batch are gathered.
template <int B, typename T, bool HasBias, bool HasRes, typename Fn, typename FnS>
inline void drop_batches_simd(const T* x, const T* bias, const T* res, T* y, int64_t b0,
                              int64_t b1, const DropParams& P, Fn batch, FnS batch_stream,
                              bool stream) {
  alignas(64) T bbuf[B];
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t e = b * B;
    const uint64_t n0 = P.offset + static_cast<uint64_t>(e / 4);
    const T* bp = nullptr;
    if (HasBias) {
      const int64_t col = e % P.hdim;
      if (col + B <= P.hdim) {
        bp = bias + col;
      } else {
        for (int i = 0; i < B; ++i) bbuf[i] = bias[(col + i) % P.hdim];
        bp = bbuf;
      }
    }
    if (e + B <= P.numel) {
      // Software prefetch a few KiB ahead: the Philox work between loads is long enough that
      // the hardware prefetchers alone leave the loop latency-bound once data is in DRAM.
      constexpr int64_t kAhead = 2048 / static_cast<int64_t>(sizeof(T));
      if (e + kAhead + B <= P.numel) {
        for (int64_t k = 0; k < B * static_cast<int64_t>(sizeof(T)); k += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(x + e + kAhead) + k, _MM_HINT_T0);
          if (HasRes) _mm_prefetch(reinterpret_cast<const char*>(res + e + kAhead) + k,
                                   _MM_HINT_T0);
        }
      }
      if (stream) {
        batch_stream(x + e, bp, HasRes ? res + e : nullptr, y + e, n0);
      } else {
        batch(x + e, bp, HasRes ? res + e : nullptr, y + e, n0);
      }
    } else {
      const int64_t m = P.numel - e;
      alignas(64) T xb[B];
      alignas(64) T rb[B];
      alignas(64) T yb[B];
      for (int i = 0; i < B; ++i) {
        xb[i] = i < m ? x[e + i] : T(0);
        rb[i] = (HasRes && i < m) ? res[e + i] : T(0);
      }
      batch(xb, bp, rb, yb, n0);
      for (int64_t i = 0; i < m; ++i) y[e + i] = yb[i];
    }
  }
}
#endif  // RB_X86

constexpr int64_t kGrainElems = 1 << 15;
#ifndef RB_GROUPS512
#define RB_GROUPS512 6
#endif
constexpr int kGroups512 = RB_GROUPS512;  // counter groups per AVX-512 batch (see philox512)
constexpr int kGroups256 = 3;  // AVX2: 16 ymm registers; 3 groups measured 0.44 vs 0.72 ns/elem

template <typename T, bool HasBias, bool HasRes>
void drop_dispatch(const T* x, const T* bias, const T* res, T* y, const DropParams& P,
                   int64_t isa) {
  const int64_t n = P.numel;
  // Non-temporal stores only when the output cannot stay in cache and is 64-byte aligned.
  const bool stream = n * static_cast<int64_t>(sizeof(T)) >= (int64_t{1} << 24) &&
                      (reinterpret_cast<uintptr_t>(y) % 64) == 0;
#if RB_X86
  if constexpr (!std::is_same_v<T, double>) {
    if (isa == kAvx512) {
      constexpr int G = kGroups512;
      constexpr int B = 32 * G;
      const int64_t nb = (n + B - 1) / B;
      auto batch = [&P](const T* a, const T* b, const T* r, T* o, uint64_t n0) {
        drop_batch512<G, T, HasBias, HasRes, false>(a, b, r, o, n0, P);
      };
      auto batch_s = [&P](const T* a, const T* b, const T* r, T* o, uint64_t n0) {
        drop_batch512<G, T, HasBias, HasRes, true>(a, b, r, o, n0, P);
      };
      at::parallel_for(0, nb, kGrainElems / B, [&](int64_t b0, int64_t b1) {
        drop_batches_simd<B, T, HasBias, HasRes>(x, bias, res, y, b0, b1, P, batch, batch_s,
                                                 stream);
      });
      if (stream) _mm_sfence();
      return;
    }
    if (isa == kAvx2) {
      constexpr int G = kGroups256;
      constexpr int B = 32 * G;
      const int64_t nb = (n + B - 1) / B;
      auto batch = [&P](const T* a, const T* b, const T* r, T* o, uint64_t n0) {
        drop_batch256<G, T, HasBias, HasRes, false>(a, b, r, o, n0, P);
      };
      auto batch_s = [&P](const T* a, const T* b, const T* r, T* o, uint64_t n0) {
        drop_batch256<G, T, HasBias, HasRes, true>(a, b, r, o, n0, P);
      };
      at::parallel_for(0, nb, kGrainElems / B, [&](int64_t b0, int64_t b1) {
        drop_batches_simd<B, T, HasBias, HasRes>(x, bias, res, y, b0, b1, P, batch, batch_s,
                                                 stream);
      });
      if (stream) _mm_sfence();
      return;
    }
  }
#endif
  (void)isa;
  (void)stream;
  const int64_t nc = (n + 3) / 4;
  at::parallel_for(0, nc, kGrainElems / 4, [&](int64_t c0, int64_t c1) {
    drop_range_scalar<T, HasBias, HasRes>(x, bias, res, y, 4 * c0, std::min(4 * c1, n), P);
  });
}

// Output buffers of 256 KiB and more come from a small cache of freed blocks (those of 8 MiB
// and more 2 MiB aligned and marked MADV_HUGEPAGE). A large block from malloc is often a new
// mmap (or heap memory glibc has just trimmed): the kernel faults in and zeroes every page on
// first touch, which costs more than the dropout itself. In a
// training loop the same sizes come back every step (forward, then backward), so they are
// reused, the way torch's CUDA caching allocator reuses device memory. The cache holds at
// most $REGBENCH_CPU_CACHE_MB MiB (default 1024; 0 turns it off); empty_cache() frees it.
class BlockCache {
 public:
  static BlockCache& get() {
    static BlockCache* c = new BlockCache();  // leaked on purpose: outlives static tensors
    return *c;
  }
  void* take(size_t bytes, size_t align) {
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(align, bytes);
#if defined(__linux__)
    if (p != nullptr && align == kHuge) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
  }
  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (cached_ + bytes <= cap_) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  void clear() {
    std::multimap<size_t, void*> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      drop.swap(free_);
      cached_ = 0;
    }
    for (auto& kv : drop) std::free(kv.second);
  }
  size_t cached() {
    std::lock_guard<std::mutex> g(mu_);
    return cached_;
  }
  static constexpr size_t kMin = size_t{256} << 10;  // smaller ones: torch's allocator
  static constexpr size_t kHuge = size_t{2} << 20;

 private:
  BlockCache() {
    const char* env = std::getenv("REGBENCH_CPU_CACHE_MB");
    const long long mb = env != nullptr ? std::atoll(env) : 1024;
    cap_ = static_cast<size_t>(std::max(0LL, mb)) << 20;
  }
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
  size_t cap_ = 0;
};

// The cache as a c10::Allocator, so outputs are ordinary (resizable) CPU tensors. Requests
// under kMin go to torch's CPU allocator.
struct CachedBlock {
  void* ptr;
  size_t bytes;
};

void give_block(void* ctx) {
  auto* blk = static_cast<CachedBlock*>(ctx);
  BlockCache::get().give(blk->ptr, blk->bytes);
  delete blk;
}

struct CachingCpuAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    if (n >= BlockCache::kMin) {
      const size_t align = n >= 4 * BlockCache::kHuge ? BlockCache::kHuge : size_t{4096};
      const size_t rounded = (n + align - 1) / align * align;
      void* p = BlockCache::get().take(rounded, align);
      if (p != nullptr) {
        return {p, new CachedBlock{p, rounded}, &give_block, c10::Device(c10::DeviceType::CPU)};
      }
    }
    return c10::GetCPUAllocator()->allocate(n);
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};

torch::Tensor alloc_like(const torch::Tensor& x) {
  static CachingCpuAllocator alloc;
  return at::detail::empty_generic(x.sizes(), &alloc, c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   x.scalar_type(), c10::MemoryFormat::Contiguous);
}

void empty_cache() { BlockCache::get().clear(); }
int64_t cached_bytes() { return static_cast<int64_t>(BlockCache::get().cached()); }

// The layout of a dropout output is torch.empty_like(x)'s (preserve_format: the input's
// stride order, made dense), so a channels_last or otherwise permuted input gives an output
// in its memory format, as nn.Dropout does. Contiguous outputs come from the block cache.
torch::Tensor empty_like_input(const torch::Tensor& x) {
  return x.is_contiguous() ? alloc_like(x) : at::empty_like(x);
}

// y = [residual +] dropout(x [+ bias]) under the contract. thresh/scale come from the host.
// The kernel runs over the logical row-major order (the mask is a function of the logical
// index); a non-contiguous input is read through a contiguous copy, and a non-contiguous
// output (a permuted layout, or `out` = a non-contiguous x for the in-place form) is written
// from a contiguous result. `out` may be x itself (in place): every element is read before
// it is written, at the same position.
torch::Tensor dropout_fwd(const torch::Tensor& x_in, const std::optional<torch::Tensor>& bias_in,
                          const std::optional<torch::Tensor>& res_in, int64_t thresh,
                          double scale, int64_t seed, int64_t offset, int64_t isa,
                          const std::optional<torch::Tensor>& out) {
  check_isa(isa);
  TORCH_CHECK(x_in.device().is_cpu(), "regbench dropout: expected a CPU tensor");
  TORCH_CHECK(thresh >= 0 && thresh <= (int64_t{1} << 24), "regbench dropout: bad threshold ",
              thresh);
  TORCH_CHECK(seed >= 0, "regbench dropout: seed must be non-negative, got ", seed);
  TORCH_CHECK(offset >= 0, "regbench dropout: offset must be non-negative, got ", offset);
  const auto x = x_in.contiguous();
  torch::Tensor result;
  if (out.has_value() && out->defined()) {
    TORCH_CHECK(out->sizes() == x.sizes() && out->scalar_type() == x.scalar_type() &&
                    out->device().is_cpu(),
                "regbench dropout: out must be a CPU tensor of x's shape and dtype");
    result = *out;
  } else {
    result = empty_like_input(x_in);
  }
  const torch::Tensor y = result.is_contiguous() ? result : alloc_like(x);
  const int64_t n = x.numel();
  if (n == 0) return result;
  const bool has_bias = bias_in.has_value() && bias_in->defined();
  const bool has_res = res_in.has_value() && res_in->defined();
  torch::Tensor bias, res;
  int64_t hdim = 1;
  if (has_bias) {
    TORCH_CHECK(x.dim() >= 1 && bias_in->dim() == 1 && bias_in->size(0) == x.size(-1),
                "regbench bias_dropout_add: bias must have shape [x.shape[-1]]");
    TORCH_CHECK(bias_in->scalar_type() == x.scalar_type(), "bias dtype must match x");
    bias = bias_in->contiguous();
    hdim = x.size(-1);
  }
  if (has_res) {
    TORCH_CHECK(res_in->scalar_type() == x.scalar_type(), "residual dtype must match x");
    res = res_in->expand(x.sizes()).contiguous();
  }
  DropParams P;
  P.k0 = static_cast<uint32_t>(static_cast<uint64_t>(seed) & 0xffffffffu);
  P.k1 = static_cast<uint32_t>(static_cast<uint64_t>(seed) >> 32);
  P.offset = static_cast<uint64_t>(offset);
  P.thresh = static_cast<uint32_t>(thresh);
  P.scale = static_cast<float>(scale);
  P.numel = n;
  P.hdim = std::max<int64_t>(hdim, 1);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "regbench_dropout",
                                  [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* bp = has_bias ? bias.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* rp = has_res ? res.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    if (has_bias && has_res) {
      drop_dispatch<scalar_t, true, true>(xp, bp, rp, yp, P, isa);
    } else if (has_bias) {
      drop_dispatch<scalar_t, true, false>(xp, bp, rp, yp, P, isa);
    } else if (has_res) {
      drop_dispatch<scalar_t, false, true>(xp, bp, rp, yp, P, isa);
    } else {
      drop_dispatch<scalar_t, false, false>(xp, bp, rp, yp, P, isa);
    }
  });
  if (!y.is_same(result)) result.copy_(y);
  return result;
}

// The eager autograd node of `regbench.kernels.dropout` (no bias, no residual): the same
// kernel and bits as the registered op, at the cost of a C++ autograd node (about a
// microsecond) instead of torch.autograd.Function.apply's (about ten). Nothing of size numel
// is saved: backward runs the same node on the gradient (so double backward works too). The
// in-place form marks x dirty: autograd refuses a leaf that requires grad and bumps x's
// version, as for F.dropout(x, inplace=True).
struct DropoutNode : public torch::autograd::Function<DropoutNode> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               int64_t thresh, double scale, int64_t seed, int64_t offset,
                               int64_t isa, bool inplace) {
    ctx->saved_data["thresh"] = thresh;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["isa"] = isa;
    if (!inplace) {
      return dropout_fwd(x, std::nullopt, std::nullopt, thresh, scale, seed, offset, isa,
                         std::nullopt);
    }
    dropout_fwd(x, std::nullopt, std::nullopt, thresh, scale, seed, offset, isa, x);
    ctx->mark_dirty({x});
    return x;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    torch::Tensor dx;
    if (grads[0].defined()) {
      dx = DropoutNode::apply(grads[0], ctx->saved_data["thresh"].toInt(),
                              ctx->saved_data["scale"].toDouble(),
                              ctx->saved_data["seed"].toInt(), ctx->saved_data["offset"].toInt(),
                              ctx->saved_data["isa"].toInt(), false);
    }
    return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor dropout_autograd(const torch::Tensor& x, int64_t thresh, double scale,
                               int64_t seed, int64_t offset, int64_t isa, bool inplace) {
  return DropoutNode::apply(x, thresh, scale, seed, offset, isa, inplace);
}

// Raw Philox4x32-10 for known-answer tests: ctr int64 [N, 4] (uint32 values), key (k0, k1).
torch::Tensor philox_raw(const torch::Tensor& ctr, int64_t k0, int64_t k1, int64_t isa) {
  check_isa(isa);
  TORCH_CHECK(ctr.dim() == 2 && ctr.size(1) == 4 && ctr.scalar_type() == at::kLong,
              "philox_raw: ctr must be int64 [N, 4]");
  const auto c = ctr.contiguous();
  auto out = torch::empty_like(c);
  const int64_t* cp = c.const_data_ptr<int64_t>();
  int64_t* op = out.mutable_data_ptr<int64_t>();
  const auto kk0 = static_cast<uint32_t>(k0), kk1 = static_cast<uint32_t>(k1);
  const int64_t n = c.size(0);
  int64_t i = 0;
#if RB_X86
  if (isa == kAvx512) {
    for (; i + 16 <= n; i += 16) {
      alignas(64) uint32_t in[4][16];
      for (int l = 0; l < 16; ++l)
        for (int w = 0; w < 4; ++w) in[w][l] = static_cast<uint32_t>(cp[4 * (i + l) + w]);
      philox_block512(in, kk0, kk1);
      for (int l = 0; l < 16; ++l)
        for (int w = 0; w < 4; ++w) op[4 * (i + l) + w] = in[w][l];
    }
  } else if (isa == kAvx2) {
    for (; i + 8 <= n; i += 8) {
      alignas(32) uint32_t in[4][8];
      for (int l = 0; l < 8; ++l)
        for (int w = 0; w < 4; ++w) in[w][l] = static_cast<uint32_t>(cp[4 * (i + l) + w]);
      philox_block256(in, kk0, kk1);
      for (int l = 0; l < 8; ++l)
        for (int w = 0; w < 4; ++w) op[4 * (i + l) + w] = in[w][l];
    }
  }
#endif
  for (; i < n; ++i) {
    uint32_t v[4];
    for (int w = 0; w < 4; ++w) v[w] = static_cast<uint32_t>(cp[4 * i + w]);
    philox_scalar(v, kk0, kk1);
    for (int w = 0; w < 4; ++w) op[4 * i + w] = v[w];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fused L2 / elastic net: grad += lam*theta [+ l1*sign(theta)], penalty sums in float64.
//
// Summation order (fixed, so every path and thread count gives the same bits): each tensor
// is cut into blocks of 4096 elements; inside a block element j goes to lane j % 16 and each
// lane adds its squares (exact in float64 for float32 inputs) in index order; lanes reduce as
// a tree 16 -> 8 -> 4 -> 2 -> 1 (lane i + lane i + half); blocks then add in order, tensor by
// tensor, starting from 0.0.

constexpr int64_t kBlock = 4096;

struct L2Params {
  double lam, l1;
  float lamf, l1f;
  bool has_l1;
};

inline double tree16(const double a[16]) {
  double s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) s8[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  for (int i = 0; i < 2; ++i) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];
}

inline float sign_l1(float x, float l1f) { return x > 0.f ? l1f : (x < 0.f ? -l1f : 0.f); }

template <typename T>
inline void l2_elem(T* g, const T* p, int64_t j, const L2Params& L, double* sq, double* ab) {
  if constexpr (std::is_same_v<T, double>) {
    const double x = p[j];
    double u = L.lam * x;
    if (L.has_l1) u = u + (x > 0 ? L.l1 : (x < 0 ? -L.l1 : 0.0));
    g[j] = g[j] + u;
    sq[j % 16] = sq[j % 16] + x * x;
    ab[j % 16] = ab[j % 16] + std::fabs(x);
  } else {
    const float x = to_f(p[j]);
    float u = L.lamf * x;
    if (L.has_l1) u = u + sign_l1(x, L.l1f);
    g[j] = from_f<T>(to_f(g[j]) + u);
    const double xd = static_cast<double>(x);
    sq[j % 16] = sq[j % 16] + xd * xd;
    ab[j % 16] = ab[j % 16] + std::fabs(xd);
  }
}

// Block [e0, e1) of one tensor; j below is relative to the block start e0.
template <typename T>
void l2_block_scalar(T* g, const T* p, int64_t len, const L2Params& L, double* s2, double* s1) {
  double sq[16] = {0}, ab[16] = {0};
  for (int64_t j = 0; j < len; ++j) l2_elem<T>(g, p, j, L, sq, ab);
  *s2 = tree16(sq);
  *s1 = tree16(ab);
}

#if RB_X86
template <typename T>
RB_T512 void l2_block512(T* g, const T* p, int64_t len, const L2Params& L, double* s2,
                         double* s1) {
  __m512d q0 = _mm512_setzero_pd(), q1 = _mm512_setzero_pd();
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  const __m512 lam = _mm512_set1_ps(L.lamf);
  const __m512 l1 = _mm512_set1_ps(L.l1f);
  const __m512 zero = _mm512_setzero_ps();
  const __m512d absmask = _mm512_castsi512_pd(_mm512_set1_epi64(0x7fffffffffffffffLL));
  int64_t j = 0;
  for (; j + 16 <= len; j += 16) {
    const __m512 x = V512<T>::load(p + j);
    __m512 u = _mm512_mul_ps(lam, x);
    if (L.has_l1) {
      const __mmask16 pos = _mm512_cmp_ps_mask(x, zero, _CMP_GT_OQ);
      const __mmask16 neg = _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ);
      __m512 sl = _mm512_maskz_mov_ps(pos, l1);
      sl = _mm512_mask_mov_ps(sl, neg, _mm512_sub_ps(zero, l1));
      u = _mm512_add_ps(u, sl);
    }
    V512<T>::store(g + j, _mm512_add_ps(V512<T>::load(g + j), u));
    const __m512d xl = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    const __m512d xh = _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1));
    q0 = _mm512_add_pd(q0, _mm512_mul_pd(xl, xl));
    q1 = _mm512_add_pd(q1, _mm512_mul_pd(xh, xh));
    a0 = _mm512_add_pd(a0, _mm512_and_pd(xl, absmask));
    a1 = _mm512_add_pd(a1, _mm512_and_pd(xh, absmask));
  }
  alignas(64) double sq[16], ab[16];
  _mm512_store_pd(sq, q0);
  _mm512_store_pd(sq + 8, q1);
  _mm512_store_pd(ab, a0);
  _mm512_store_pd(ab + 8, a1);
  for (; j < len; ++j) l2_elem<T>(g, p, j, L, sq, ab);
  *s2 = tree16(sq);
  *s1 = tree16(ab);
}

template <typename T>
RB_T256 void l2_block256(T* g, const T* p, int64_t len, const L2Params& L, double* s2,
                         double* s1) {
  __m256d q[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                  _mm256_setzero_pd()};
  __m256d a[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                  _mm256_setzero_pd()};
  const __m256 lam = _mm256_set1_ps(L.lamf);
  const __m256 l1 = _mm256_set1_ps(L.l1f);
  const __m256 nl1 = _mm256_set1_ps(-L.l1f);
  const __m256 zero = _mm256_setzero_ps();
  const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  int64_t j = 0;
  for (; j + 16 <= len; j += 16) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256 x = V256<T>::load(p + j + 8 * h);
      __m256 u = _mm256_mul_ps(lam, x);
      if (L.has_l1) {
        const __m256 pos = _mm256_cmp_ps(x, zero, _CMP_GT_OQ);
        const __m256 neg = _mm256_cmp_ps(x, zero, _CMP_LT_OQ);
        const __m256 sl = _mm256_or_ps(_mm256_and_ps(pos, l1), _mm256_and_ps(neg, nl1));
        u = _mm256_add_ps(u, sl);
      }
      V256<T>::store(g + j + 8 * h, _mm256_add_ps(V256<T>::load(g + j + 8 * h), u));
      const __m256d xl = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
      const __m256d xh = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
      q[2 * h] = _mm256_add_pd(q[2 * h], _mm256_mul_pd(xl, xl));
      q[2 * h + 1] = _mm256_add_pd(q[2 * h + 1], _mm256_mul_pd(xh, xh));
      a[2 * h] = _mm256_add_pd(a[2 * h], _mm256_and_pd(xl, absmask));
      a[2 * h + 1] = _mm256_add_pd(a[2 * h + 1], _mm256_and_pd(xh, absmask));
    }
  }
  alignas(32) double sq[16], ab[16];
  for (int i = 0; i < 4; ++i) {
    _mm256_store_pd(sq + 4 * i, q[i]);
    _mm256_store_pd(ab + 4 * i, a[i]);
  }
  for (; j < len; ++j) l2_elem<T>(g, p, j, L, sq, ab);
  *s2 = tree16(sq);
  *s1 = tree16(ab);
}
#endif

template <typename T>
void l2_block(T* g, const T* p, int64_t len, const L2Params& L, double* s2, double* s1,
              int64_t isa) {
#if RB_X86
  if constexpr (!std::is_same_v<T, double>) {
    if (isa == kAvx512) return l2_block512<T>(g, p, len, L, s2, s1);
    if (isa == kAvx2) return l2_block256<T>(g, p, len, L, s2, s1);
  }
#endif
  (void)isa;
  l2_block_scalar<T>(g, p, len, L, s2, s1);
}

// grads[i] += lam * params[i] (+ l1 * sign); returns float64 0.5*lam*sum(p^2) + l1*sum|p|.
torch::Tensor l2_multi(std::vector<torch::Tensor> grads, const std::vector<torch::Tensor>& params,
                       double lam, double l1, int64_t isa) {
  check_isa(isa);
  TORCH_CHECK(grads.size() == params.size(), "l2_: ", grads.size(), " grads but ",
              params.size(), " params");
  const size_t nt = params.size();
  std::vector<torch::Tensor> pc(nt), gc(nt);
  std::vector<int64_t> first(nt + 1, 0);
  for (size_t i = 0; i < nt; ++i) {
    TORCH_CHECK(params[i].device().is_cpu() && grads[i].device().is_cpu(),
                "l2_: expected CPU tensors");
    TORCH_CHECK(params[i].scalar_type() == grads[i].scalar_type(), "l2_: tensor ", i,
                ": grad dtype ", grads[i].scalar_type(), " != param dtype ",
                params[i].scalar_type());
    TORCH_CHECK(params[i].sizes() == grads[i].sizes(), "l2_: tensor ", i,
                ": grad shape != param shape");
    pc[i] = params[i].contiguous();
    gc[i] = grads[i].is_contiguous() ? grads[i] : grads[i].contiguous();
    first[i + 1] = first[i] + (pc[i].numel() + kBlock - 1) / kBlock;
  }
  const int64_t nblocks = first[nt];
  std::vector<double> part2(nblocks), part1(nblocks);
  L2Params L{lam, l1, static_cast<float>(lam), static_cast<float>(l1), l1 != 0.0};
  at::parallel_for(0, nblocks, 8, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const size_t t = static_cast<size_t>(
          std::upper_bound(first.begin(), first.end(), b) - first.begin() - 1);
      const int64_t e0 = (b - first[t]) * kBlock;
      const int64_t len = std::min(kBlock, pc[t].numel() - e0);
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pc[t].scalar_type(), "l2_",
                                      [&] {
        l2_block<scalar_t>(gc[t].mutable_data_ptr<scalar_t>() + e0,
                           pc[t].const_data_ptr<scalar_t>() + e0, len, L, &part2[b],
                           &part1[b], isa);
      });
    }
  });
  for (size_t i = 0; i < nt; ++i) {
    if (!gc[i].is_same(grads[i])) grads[i].copy_(gc[i]);
  }
  double s2 = 0.0, s1 = 0.0;
  for (int64_t b = 0; b < nblocks; ++b) {
    s2 = s2 + part2[b];
    s1 = s1 + part1[b];
  }
  const double pen = (0.5 * lam) * s2 + l1 * s1;
  return torch::scalar_tensor(pen, torch::dtype(torch::kFloat64));
}

}  // namespace

#include "optim.h"  // fused optimizer steps (optim.cpp)

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("cpu_has_avx512", &cpu_has_avx512);
  m.def("cpu_has_avx2", &cpu_has_avx2);
  m.def("dropout_fwd", &dropout_fwd, "fused [bias +] dropout [+ residual]", py::arg("x"),
        py::arg("bias"), py::arg("residual"), py::arg("thresh"), py::arg("scale"),
        py::arg("seed"), py::arg("offset"), py::arg("isa"), py::arg("out") = py::none());
  m.def("dropout_autograd", &dropout_autograd, "dropout with a C++ autograd node (eager)",
        py::arg("x"), py::arg("thresh"), py::arg("scale"), py::arg("seed"), py::arg("offset"),
        py::arg("isa"), py::arg("inplace"));
  m.def("empty_cache", &empty_cache, "free the cached CPU output blocks");
  m.def("cached_bytes", &cached_bytes, "bytes held in the CPU output block cache");
  m.def("philox_raw", &philox_raw, "Philox4x32-10 on raw counters (tests)");
  m.def("l2_multi", &l2_multi, "fused L2 / elastic net over tensor lists");
  m.def("sgd_multi", &regbench_optim::sgd_multi, "fused SGD step with elastic net");
  m.def("adamw_multi", &regbench_optim::adamw_multi, "fused Adam/AdamW step with elastic net");
}
