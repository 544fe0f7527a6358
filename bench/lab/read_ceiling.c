// The fastest native code reads memory here: each of T threads sweeps its 1/T of a `mb` MB float32 buffer `passes`
// times with the widest vectors the compiler targets (-march=native: AVX-512 where the CPU has it), 8 independent
// sums, nothing else. Prints "<threads> <mb> <GB/s>", best of `rounds`. Built and run by bench/lab/read-ceiling.mjs.
// cc -O3 -march=native -pthread read_ceiling.c -o read_ceiling
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
typedef float v16 __attribute__((vector_size(64)));
typedef struct { const v16 *p; size_t n; int passes; float out; } Job;
static void *sweep(void *arg) {
  Job *j = arg;
  v16 a[8] = {0};
  for (int r = 0; r < j->passes; r++)
    for (size_t i = 0; i < j->n; i += 8)
      for (int k = 0; k < 8; k++) a[k] += j->p[i + k];
  v16 s = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
  float t = 0;
  for (int k = 0; k < 16; k++) t += s[k];
  j->out = t;
  return NULL;
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  int T = argc > 1 ? atoi(argv[1]) : 1;
  double mb = argc > 2 ? atof(argv[2]) : 60;
  int passes = argc > 3 ? atoi(argv[3]) : 4, rounds = argc > 4 ? atoi(argv[4]) : 3;
  size_t per = ((size_t)(mb * 1e6 / T) / 512) * 512; // bytes per thread, whole 8-vector blocks
  Job jobs[64]; pthread_t th[64];
  for (int t = 0; t < T; t++) {
    v16 *p = aligned_alloc(64, per);
    for (size_t i = 0; i < per / 4; i++) ((float *)p)[i] = 1e-3f * (float)(i % 1000);
    jobs[t] = (Job){p, per / 64, passes, 0};
  }
  double best = 1e30; float chk = 0;
  for (int r = 0; r < rounds + 1; r++) { // round 0 warms
    double t0 = now();
    for (int t = 0; t < T; t++) pthread_create(&th[t], NULL, sweep, &jobs[t]);
    for (int t = 0; t < T; t++) { pthread_join(th[t], NULL); chk += jobs[t].out; }
    double dt = now() - t0;
    if (r > 0 && dt < best) best = dt;
  }
  printf("%d %.1f %.2f %g\n", T, mb, (double)per * T * passes / best / 1e9, chk);
  return 0;
}
