// test_gpu_mma.c — the warp-level primitives of kernels/mma.cuh (mma.sync for bf16 and tf32,
// ldmatrix, cp.async, shuffles) through the one-warp probes of kernels/mma_probe.cu, and the
// warpgroup MMA of sm_90a (wgmma with shared-memory descriptors; test_wgmma says how) through its
// one-warpgroup probe, on compute capability 9.0 and under the emulator.
//
// On a GPU it proves that the fragment layouts ganc's tensor-core kernels assume are the
// hardware's; built as test_gpu_mma_emu it proves that tests/gpu/cudemu emulates them the same
// way, so that a kernel that passes under the emulator in CI has its fragments right on the GPU.
// Each probe runs unchanged (mutation 0) and with one index perturbed the way a kernel author might
// get it wrong (mutations 1-3: rows +8 and columns +8 exchanged, the halves of a bf16 pair or the
// two B words swapped, D's halves or columns stored in the wrong place; for ldmatrix: a permuted
// row address, a missing .trans, a read of the cp.async destination before cp.async.wait_group).
// The unchanged probe must match the reference, every mutation must miss it (the cp.async one is
// checked under the emulator only: a GPU may have the data in place by chance).
//
// Reference: D = A·B in double from the operands rounded as the instructions round them (bf16 to
// nearest even, tf32 to nearest with ties away; written here independently of mma.cuh). The
// products are exact in FP32 and the 16 (8) FP32 sums in any order are off by at most
// 16·2⁻²⁴·Σ|a·b| (γ_16), so a match is |D − ref| ≤ 1e-5·Σ|a·b| elementwise; a wrong index moves
// whole products, errors of order Σ|a·b|.
//
// Under the emulator, the faults it must stop (each in a child process, exit status 1 and the
// message checked): lanes at different shuffles, a lane that returns while its warp waits at a
// shuffle, ldmatrix from global memory, a plain store into the destination of a cp.async still in
// flight (cudemu lands a copy at its wait, which would otherwise hide that race).
// Exit: 0 all passed, 1 a check failed, 77 no usable GPU.
#include "core/check.h"
#include "core/ctx.h"
#include "kernels/kernels.h"
#include "testutil.h" // tu_run_child

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SKIP = 77 };

#ifdef GANC_CUDEMU
#define EMULATED 1
#else
#define EMULATED 0
#endif

static int passed, failed;

static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  fflush(stdout);
  if (ok)
    passed++;
  else
    failed++;
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static float uniform(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) * 0x1.0p-52 - 1.0); }

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float float_of(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
// Round to bf16 (nearest, ties to even) and to tf32 (nearest, ties away); finite inputs only.
static uint16_t bf16_round(float f) {
  const uint32_t u = bits_of(f), lsb = (u >> 16) & 1u;
  return (uint16_t)((u + 0x7FFFu + lsb) >> 16);
}
static float tf32_round(float f) {
  const uint32_t u = bits_of(f);
  return float_of((u + 0x1000u) & 0xFFFFE000u);
}

// ref = A·B (m×k by k×n) in double from the rounded operands; sab = Σ|a·b|.
static void reference(const float *A, const float *B, int m, int k, int n, double *ref,
                      double *sab) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0, a = 0;
      for (int p = 0; p < k; p++) {
        s += (double)A[i * k + p] * B[p * n + j];
        a += fabs((double)A[i * k + p] * B[p * n + j]);
      }
      ref[i * n + j] = s, sab[i * n + j] = a;
    }
}

// Largest |D − ref| / Σ|a·b| (inf for a non-finite D).
static double rel_err(const float *D, const double *ref, const double *sab, int n) {
  double e = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(D[i])) return INFINITY;
    e = fmax(e, fabs(D[i] - ref[i]) / (sab[i] + 1e-30));
  }
  return e;
}

typedef struct {
  ganc_ctx *gpu;
  ganc_stream st;
  float *d_a, *d_b, *d_d; // device: A, B (floats or bf16 bits), D [16][8] (+ room for shuffles)
} probe_env;

static void run_probe(probe_env *e, int kind, int mutation, const void *a, size_t a_bytes,
                      const void *b, size_t b_bytes, float *D, size_t d_floats) {
  float *nan = xmalloc(d_floats * sizeof(float));
  for (size_t i = 0; i < d_floats; i++)
    nan[i] = NAN;
  ganc_cuda_h2d(e->gpu, e->d_d, nan, d_floats * sizeof(float));
  if (a_bytes) ganc_cuda_h2d(e->gpu, e->d_a, a, a_bytes);
  if (b_bytes) ganc_cuda_h2d(e->gpu, e->d_b, b, b_bytes);
  mma_probe_cuda(e->gpu, e->st, kind, mutation, e->d_a, e->d_b, e->d_d);
  ganc_cuda_d2h(e->gpu, D, e->d_d, d_floats * sizeof(float));
  free(nan);
}

static const double TOL = 1e-5;

// kind BF16, TF32 or LDMATRIX: mutation 0 matches, 1..3 miss.
static void test_mma(probe_env *e, int kind, uint64_t seed) {
  const int K = kind == GANC_PROBE_TF32 ? 8 : 16;
  float A[16 * 16], B[16 * 8], D[16 * 8];
  uint16_t Ab[16 * 16], Bb[16 * 8];
  double ref[16 * 8], sab[16 * 8];
  for (int i = 0; i < 16 * K; i++) {
    const float v = uniform(&seed);
    Ab[i] = bf16_round(v);
    A[i] = kind == GANC_PROBE_TF32 ? tf32_round(v) : float_of((uint32_t)Ab[i] << 16);
  }
  for (int i = 0; i < K * 8; i++) {
    const float v = uniform(&seed);
    Bb[i] = bf16_round(v);
    B[i] = kind == GANC_PROBE_TF32 ? tf32_round(v) : float_of((uint32_t)Bb[i] << 16);
  }
  reference(A, B, 16, K, 8, ref, sab);
  static const char *const kname[] = {"mma.m16n8k16.bf16", "mma.m16n8k8.tf32",
                                      "cp.async + ldmatrix + mma.bf16"};
  for (int mut = 0; mut <= 3; mut++) {
    if (kind == GANC_PROBE_LDMATRIX && mut == 3 && !EMULATED) continue;
    if (kind == GANC_PROBE_LDMATRIX)
      run_probe(e, kind, mut, Ab, sizeof Ab, Bb, sizeof Bb, D, 16 * 8);
    else
      run_probe(e, kind, mut, A, 16 * (size_t)K * sizeof(float), B, (size_t)K * 8 * sizeof(float),
                D, 16 * 8);
    const double err = rel_err(D, ref, sab, 16 * 8);
    char what[160];
    snprintf(what, sizeof what, "%s mutation %d: max |D - ref| / sum|ab| = %.2e (%s)", kname[kind],
             mut, err, mut == 0 ? "must match" : "must miss");
    check(mut == 0 ? err <= TOL : err > 1e-2, what);
  }
}

static void test_shfl(probe_env *e) {
  float A[32], D[128];
  for (int l = 0; l < 32; l++)
    A[l] = (float)(100 + l);
  run_probe(e, GANC_PROBE_SHFL, 0, A, sizeof A, NULL, 0, D, 128);
  int bad = 0;
  for (int l = 0; l < 32; l++) {
    const float want[4] = {A[l ^ 1], A[l + 3 < 32 ? l + 3 : l], A[l >= 5 ? l - 5 : l], A[31 - l]};
    for (int j = 0; j < 4; j++)
      bad += D[4 * l + j] != want[j];
  }
  char what[96];
  snprintf(what, sizeof what, "shuffles xor/down/up/idx: %d of 128 values wrong", bad);
  check(bad == 0, what);
}

// Under the emulator: the fault kind (with mutation) must stop the child with exit status 1 and
// `expect` in its message.
typedef struct fault_run {
  probe_env *e;
  int kind, mutation;
} fault_run;
static void run_fault(void *p) {
  const fault_run *f = p;
  mma_probe_cuda(f->e->gpu, f->e->st, f->kind, f->mutation, f->e->d_a, f->e->d_b, f->e->d_d);
  ganc_cuda_sync(f->e->gpu);
}
static void test_fault_m(probe_env *e, int kind, int mutation, const char *expect,
                         const char *what) {
  fault_run f = {e, kind, mutation};
  char msg[1024];
  const int rc = tu_run_child(run_fault, &f, msg, sizeof msg);
  const int ok = rc == 1 && strstr(msg, expect);
  char line[256];
  snprintf(line, sizeof line, "emulator stops %s", what);
  check(ok, line);
  if (!ok) fprintf(stderr, "  child exit %d, message: %s\n", rc, msg);
}
static void test_fault(probe_env *e, int kind, const char *expect, const char *what) {
  test_fault_m(e, kind, 0, expect, what);
}

// Under the emulator: static shared memory is poison at the start of every block (cudemu.cc keeps
// the section's pages closed and poisons again only those a launch touched), in a second launch as
// in the first; and a fault elsewhere still stops the program (its handler passes it on).
static void test_shared_poison(probe_env *e) {
  int ok = 1;
  for (int run = 0; run < 2; run++) {
    float h[192];
    for (int i = 0; i < 192; i++)
      h[i] = 0.0f;
    ganc_cuda_h2d(e->gpu, e->d_d, h, sizeof h);
    mma_probe_cuda(e->gpu, e->st, GANC_PROBE_SHARED, 0, NULL, NULL, e->d_d);
    ganc_cuda_d2h(e->gpu, h, e->d_d, sizeof h);
    for (int b = 0; b < 3; b++)
      for (int l = 0; l < 32; l++)
        ok &= bits_of(h[64 * b + l]) == 0x7FA5A5A5u &&
              h[64 * b + 32 + l] == (float)(100 * b + (l + 1) % 32);
  }
  check(ok, "emulator poisons static shared memory before every block, launch after launch");
}
static void null_store(void *p) {
  mma_probe_cuda(((probe_env *)p)->gpu, ((probe_env *)p)->st, GANC_PROBE_SHARED, 0, NULL, NULL,
                 ((probe_env *)p)->d_d);
  volatile int *volatile bad = NULL;
  *bad = 1;
}
static void test_other_fault(probe_env *e) {
  char msg[1024];
  const int rc = tu_run_child(null_store, e, msg, sizeof msg);
  // killed by SIGSEGV (-1), or stopped by UBSan's handler of it (exit 1, "SEGV")
  check(rc == -1 || (rc != 0 && strstr(msg, "SEGV") != NULL),
        "a segmentation fault outside shared memory still stops the program");
}

// wgmma (m64n128k16, one warpgroup): D [64][128] = A [64][64] · B [64][128] for every source,
// major-ness and swizzle of A and B the probe stages (72 configurations: A from registers with each
// B layout, and 8 x 8 shared-memory layouts); mutations that must miss on chosen configurations;
// under the emulator the faults it must stop. On a GPU only where compute capability is 9.0
// (the sm_90a code; elsewhere the probe would trap).
static const char *const SWZ[4] = {"none", "32B", "64B", "128B"};
static void cfg_name(int cfg, char *buf, size_t n) {
  if (cfg & 1)
    snprintf(buf, n, "A regs, B %s-major %s", (cfg & 16) ? "N" : "K", SWZ[(cfg >> 5) & 3]);
  else
    snprintf(buf, n, "A %s-major %s, B %s-major %s", (cfg & 2) ? "M" : "K", SWZ[(cfg >> 2) & 3],
             (cfg & 16) ? "N" : "K", SWZ[(cfg >> 5) & 3]);
}
enum { WG_M = 64, WG_N = 128, WG_K = 64 };
// The wgmma probe's cfg and mutation on ab (A, Aᵀ) and bb (B, Bᵀ): max |D − ref| / Σ|a·b|.
static double wgmma_err(probe_env *e, int cfg, int mutation, const uint16_t *ab, const uint16_t *bb,
                        float *D, const double *ref, const double *sab) {
  run_probe(e, GANC_PROBE_WGMMA + cfg, mutation, ab, sizeof(uint16_t) * 2 * WG_M * WG_K, bb,
            sizeof(uint16_t) * 2 * WG_K * WG_N, D, WG_M * WG_N);
  return rel_err(D, ref, sab, WG_M * WG_N);
}
static void test_wgmma(probe_env *e, uint64_t seed) {
  enum { M = WG_M, N = WG_N, K = WG_K };
  float *A = xmalloc(sizeof(float) * M * K), *B = xmalloc(sizeof(float) * K * N);
  float *D = xmalloc(sizeof(float) * M * N);
  double *ref = xmalloc(sizeof(double) * M * N), *sab = xmalloc(sizeof(double) * M * N);
  uint16_t *ab = xmalloc(sizeof(uint16_t) * 2 * M * K), *bb = xmalloc(sizeof(uint16_t) * 2 * K * N);
  for (int i = 0; i < M; i++)
    for (int k = 0; k < K; k++) {
      const uint16_t h = bf16_round(uniform(&seed));
      A[i * K + k] = float_of((uint32_t)h << 16);
      ab[i * K + k] = h, ab[M * K + k * M + i] = h; // A, then Aᵀ
    }
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) {
      const uint16_t h = bf16_round(uniform(&seed));
      B[k * N + j] = float_of((uint32_t)h << 16);
      bb[k * N + j] = h, bb[K * N + j * K + k] = h; // B, then Bᵀ
    }
  reference(A, B, M, K, N, ref, sab);
  // Products exact, 64 FP32 sums in any order: γ_64 ≈ 3.8e-6 of Σ|a·b|.
  const double tol = 1e-5;
  int bad = 0, runs = 0;
  for (int cfg = 0; cfg < 128; cfg++) {
    if ((cfg & 1) && (cfg & 14)) continue; // A's layout bits mean nothing with A in registers
    const double err = wgmma_err(e, cfg, 0, ab, bb, D, ref, sab);
    runs++;
    if (err > tol) {
      char name[96];
      cfg_name(cfg, name, sizeof name);
      fprintf(stderr, "  wgmma %s: max |D - ref| / sum|ab| = %.2e\n", name, err);
      bad++;
    }
  }
  char what[160];
  snprintf(what, sizeof what, "wgmma.m64n128k16.bf16: %d of %d operand layouts match (tol %.0e)",
           runs - bad, runs, tol);
  check(bad == 0, what);
  // Mutations, each on a configuration where it changes the operands read.
  static const struct {
    int cfg, mutation;
    const char *what;
  } muts[] = {
      {(3 << 2) | (3 << 5), 1, "the 128B swizzle's XOR left out (A, B K-major)"},
      {2 | (1 << 2) | 16 | (2 << 5), 1, "the 32B / 64B swizzles' XOR left out (A M-, B N-major)"},
      {0, 2, "A's LBO and SBO exchanged (K-major, none)"},
      {2 | 16, 2, "A's LBO and SBO exchanged (M-major, none)"},
      {1 | 16, 5, "A's register words 1 and 2 exchanged (A regs, B N-major, none)"},
      {(3 << 2) | (3 << 5), 3, "D's rows g and g+8 exchanged"},
      {1 | (3 << 5), 4, "B's transpose flag flipped (A regs, B K-major 128B)"},
      {2 | 16, 4, "B's transpose flag flipped (M/N-major, none)"},
  };
  for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
    const double err = wgmma_err(e, muts[i].cfg, muts[i].mutation, ab, bb, D, ref, sab);
    snprintf(what, sizeof what, "wgmma mutation: %s: max |D - ref| / sum|ab| = %.2e (must miss)",
             muts[i].what, err);
    check(err > 1e-2, what);
  }
  if (EMULATED) {
    // The faults need the operands in place (the probe reads them as it faults).
    ganc_cuda_h2d(e->gpu, e->d_a, ab, sizeof(uint16_t) * 2 * M * K);
    ganc_cuda_h2d(e->gpu, e->d_b, bb, sizeof(uint16_t) * 2 * K * N);
    const int sw = (3 << 2) | (3 << 5); // both K-major, 128B swizzle
    static const struct {
      int cfg, mutation;
      const char *expect, *what;
    } faults[] = {
        {sw, 10, "ran no fence.proxy.async",
         "wgmma reading cp.async data without fence.proxy.async"},
        {sw, 11, "without a wgmma.fence", "wgmma.mma_async without wgmma.fence"},
        {sw, 12, "before wgmma.wait_group", "a store into an operand of a wgmma in flight"},
        {sw, 13, "wrote its accumulators", "a store into the accumulators of a wgmma in flight"},
        {sw, 14, "gives other operands", "a warp of the warpgroup at another k-step"},
        {sw, 15, "still in flight when its threads returned", "a wgmma never waited for"},
        {sw, 16, "not on a row 0", "a swizzled descriptor starting inside its pattern"},
        {1 | (3 << 5), 17, "registers changed",
         "A's registers rewritten between two wgmma without wgmma.fence"},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
      test_fault_m(e, GANC_PROBE_WGMMA + faults[i].cfg, faults[i].mutation, faults[i].expect,
                   faults[i].what);
  }
  free(A), free(B), free(D), free(ref), free(sab), free(ab), free(bb);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    const int help = !strcmp(argv[1], "--help");
    fprintf(help ? stdout : stderr,
            "usage: %s   (no options; exit 0 passed, 1 failed, 77 no GPU)\n", argv[0]);
    return help ? 0 : GANC_EXIT_USAGE;
  }
  ganc_ctx gpu;
  memset(&gpu, 0, sizeof gpu);
  char why[256] = "";
  if (ganc_cuda_ctx_init(&gpu, 0, why, sizeof why) != 0) {
    printf("SKIP: %s\n", why);
    return SKIP;
  }
  char desc[256];
  ganc_cuda_describe(&gpu, desc, sizeof desc);
  printf("device: %s\n", desc);
  probe_env e = {.gpu = &gpu, .st = ganc_cuda_stream(&gpu)};
  // Room for the largest probe: wgmma's A and Aᵀ (16 KB), B and Bᵀ (32 KB), D [64][128].
  e.d_a = ganc_cuda_malloc(&gpu, 2 * 64 * 64 * sizeof(uint16_t));
  e.d_b = ganc_cuda_malloc(&gpu, 2 * 64 * 128 * sizeof(uint16_t));
  e.d_d = ganc_cuda_malloc(&gpu, 64 * 128 * sizeof(float));

  test_mma(&e, GANC_PROBE_BF16, 11);
  test_mma(&e, GANC_PROBE_TF32, 12);
  test_mma(&e, GANC_PROBE_LDMATRIX, 13);
  test_shfl(&e);
  if (ganc_cuda_conv_wg_ok(&gpu)) // compute capability 9.0 and sm_90a code in this build
    test_wgmma(&e, 14);
  else
    printf("SKIP wgmma: no sm_90a code for this device (compute capability %d.%d; wgmma runs on "
           "9.0 from a build for \"90a\")\n",
           ganc_cuda_cc(&gpu) / 10, ganc_cuda_cc(&gpu) % 10);
  if (EMULATED) {
    test_fault(&e, GANC_PROBE_FAULT_DIVERGE, "different warp collectives",
               "lanes at different shuffles");
    test_fault(&e, GANC_PROBE_FAULT_RETURN, "returned",
               "a lane that returns while its warp waits at a shuffle");
    test_fault(&e, GANC_PROBE_FAULT_LDMATRIX_GLOBAL, "not 16 bytes of shared memory",
               "ldmatrix from global memory");
    test_fault(&e, GANC_PROBE_FAULT_CP_ASYNC_RACE, "was written while the cp.async",
               "a store into the destination of another lane's cp.async in flight");
    test_shared_poison(&e);
    test_other_fault(&e);
  }
  printf("%d passed, %d failed\n", passed, failed);
  ganc_cuda_free(&gpu, e.d_a);
  ganc_cuda_free(&gpu, e.d_b);
  ganc_cuda_free(&gpu, e.d_d);
  ganc_cuda_ctx_free(&gpu);
  return failed ? 1 : 0;
}
