// Native C for the Q8_0 batch-1 matrix-vector product at WebAssembly SIMD128's width (issue 17): how fast the
// instruction sequence of llm.ts's kernel (src/backend/wasm/assembly/gemv.ts `matmul_q8`: int8 widened to int16 by
// shift / mask, i32x4.dot_i16x8_s = pmaddwd against 14-bit activations, one f32 scale a block of 32) streams weights
// from memory when a C compiler emits it (mode 0), against the same product through SSSE3's pmaddubsw (u8 × s8 → i16
// pairs: WebAssembly's i16x8.relaxed_dot_i8x16_i7x16_s, which needs 7-bit activations; mode 1: a speed bound only,
// its activations are not the 8 bits llama.cpp rounds to). 768-wide rows, ~88 MB of int8 + 11 MB of scales: out of
// cache, like a stories110M token (~117 MB). Prints GB/s of weights + scales and the stories110M tokens/s it implies.
// cc -O2 -march=x86-64-v2 q8_native.c -o q8_native && ./q8_native 0 && ./q8_native 1     (x86-64 only)
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  const int mode = argc > 1 ? atoi(argv[1]) : 0, K = 768, N = 768 * 150, nb = K / 32;
  int8_t *w = aligned_alloc(64, (size_t)N * K);
  float *sc = aligned_alloc(64, (size_t)N * nb * 4), *out = aligned_alloc(64, (size_t)N * 4);
  int16_t *x = aligned_alloc(64, K * 2);
  int8_t *x8 = aligned_alloc(64, K);
  for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (int8_t)((i * 7) % 255 - 127);
  for (size_t i = 0; i < (size_t)N * nb; i++) sc[i] = 1e-3f * (float)(i % 17);
  for (int k = 0; k < K; k++) x[k] = (int16_t)((k * 37) % 16000 - 8000), x8[k] = (int8_t)((k * 37) % 64);
  const __m128i hm = _mm_set1_epi16((short)0xff00), ones = _mm_set1_epi16(1);
  double best = 1e30;
  for (int r = 0; r < 6; r++) { // round 0 warms
    const double t0 = now();
    for (int j = 0; j < N; j++) {
      const int8_t *pw = w + (size_t)j * K;
      const float *ps = sc + (size_t)j * nb;
      __m128 acc = _mm_setzero_ps(), acc2 = acc;
      for (int b = 0; b < nb; b += 2) {
        const __m128i *p = (const __m128i *)(pw + b * 32);
        const __m128i v0 = _mm_load_si128(p), v1 = _mm_load_si128(p + 1), v2 = _mm_load_si128(p + 2),
                      v3 = _mm_load_si128(p + 3);
        __m128i s, t;
        if (mode == 0) { // llm.ts's sequence: (v << 8) and (v & 0xff00) against x permuted even/odd, pmaddwd
          const __m128i *xo = (const __m128i *)(x + b * 32);
          s = _mm_add_epi32(_mm_add_epi32(_mm_madd_epi16(_mm_slli_epi16(v0, 8), xo[0]), _mm_madd_epi16(_mm_and_si128(v0, hm), xo[1])),
                            _mm_add_epi32(_mm_madd_epi16(_mm_slli_epi16(v1, 8), xo[2]), _mm_madd_epi16(_mm_and_si128(v1, hm), xo[3])));
          t = _mm_add_epi32(_mm_add_epi32(_mm_madd_epi16(_mm_slli_epi16(v2, 8), xo[4]), _mm_madd_epi16(_mm_and_si128(v2, hm), xo[5])),
                            _mm_add_epi32(_mm_madd_epi16(_mm_slli_epi16(v3, 8), xo[6]), _mm_madd_epi16(_mm_and_si128(v3, hm), xo[7])));
        } else { // pmaddubsw: 7-bit unsigned x against int8 w, pairs summed in i16, then pmaddwd by 1
          const __m128i *xo = (const __m128i *)(x8 + b * 32);
          s = _mm_madd_epi16(_mm_add_epi16(_mm_maddubs_epi16(xo[0], v0), _mm_maddubs_epi16(xo[1], v1)), ones);
          t = _mm_madd_epi16(_mm_add_epi16(_mm_maddubs_epi16(xo[2], v2), _mm_maddubs_epi16(xo[3], v3)), ones);
        }
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(s), _mm_set1_ps(ps[b])));
        acc2 = _mm_add_ps(acc2, _mm_mul_ps(_mm_cvtepi32_ps(t), _mm_set1_ps(ps[b + 1])));
      }
      float f[4];
      _mm_storeu_ps(f, _mm_add_ps(acc, acc2));
      out[j] = f[0] + f[1] + f[2] + f[3];
    }
    const double dt = now() - t0;
    if (r > 0 && dt < best) best = dt;
  }
  const double bytes = (double)N * K * (1 + 4.0 / 32);
  printf("mode %d (%s): %.2f GB/s of weights, %.1f tok/s at stories110M's 117 MB (check %g)\n", mode,
         mode == 0 ? "llm.ts's pmaddwd sequence" : "pmaddubsw, 7-bit x", bytes / best / 1e9, bytes / best / 117e6, out[5]);
  return 0;
}
