// test_conv_emu.cu — the convolution kernels of kernels/conv.cu checked WITHOUT a GPU: this
// program includes conv.cu and runs its kernels' block loop on the host — every thread's
// begin/load/stash/tile_fma/store in barrier order (threads reversed inside each phase, so a
// hidden dependency between threads would show), shared memory filled with NaN first, the real
// split-K plan and reduction for the weight gradient — and compares all three roles with a naive
// double-precision reference, including the accumulate rule (dw starts at 0.5). It proves the
// tiling's index arithmetic on CI; timing, memory ordering and the real device are for the GPU
// tests (test_gpu_conv). Usage: test_conv_emu [N H W C K R S stride pad] (no args: a fixed set).
#include "core/check.h"
#include "kernels/kernels.h"
#include "ops/ops.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
// The launchers' scratch is not used here: split-K partials get their own buffer below. The real
// ganc_cuda_scratch (kernels/ctx.cu) is not linked, so this host-only program needs no GPU.
extern "C" float *ganc_cuda_scratch(ganc_ctx *ctx, size_t n) {
  (void)ctx;
  (void)n;
  return NULL;
}

#include "kernels/conv.cu"

template <class Role> static void emulate(const typename Role::Args &a, dim3 grid) {
  std::vector<typename Role::Thread> th(THREADS);
  Smem *sm = (Smem *)malloc(sizeof(Smem));
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        for (size_t i = 0; i < sizeof(Smem) / 4; i++)
          ((float *)sm)[i] = NAN;
        int nk = -1;
        for (int tid = 0; tid < THREADS; tid++) {
          int v = Role::begin(a, bx, by, bz, tid, th[tid]);
          if (nk >= 0 && v != nk) {
            printf("nk differs across threads!\n");
            exit(1);
          }
          nk = v;
        }
        if (nk > 0) {
          for (int tid = 0; tid < THREADS; tid++)
            Role::load(a, tid, th[tid]);
          for (int tid = 0; tid < THREADS; tid++)
            Role::stash(th[tid], *sm, 0, tid);
        }
        for (int it = 0; it < nk; it++) {
          const int cur = it & 1;
          const bool more = it + 1 < nk;
          // reverse thread order inside a phase: any hidden intra-phase dependency would show
          for (int tid = THREADS - 1; tid >= 0; tid--) {
            if (more) Role::load(a, tid, th[tid]);
            tile_fma(*sm, cur, tid, th[tid].acc);
            if (more) Role::stash(th[tid], *sm, cur ^ 1, tid);
          }
        }
        for (int tid = 0; tid < THREADS; tid++)
          Role::store(a, bz, tid, th[tid]);
      }
  free(sm);
}

static float rnd(unsigned &s) {
  s = s * 1664525u + 1013904223u;
  return ((s >> 8) * (1.0f / 16777216.0f)) * 2 - 1;
}

static double maxerr(const float *a, const double *b, size_t n) {
  double m = 0, mb = 1e-30;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= m)) m = d;
    if (fabs(b[i]) > mb) mb = fabs(b[i]);
  }
  return m / mb;
}

static int test(int N, int H, int W, int C, int K, int R, int S, int stride, int pad) {
  conv_shape s;
  if (conv_shape_make(&s, N, H, W, C, K, R, S, stride, pad)) {
    printf("bad shape\n");
    return 1;
  }
  size_t nx = (size_t)N * H * W * C, nw = (size_t)R * S * C * K, ny = (size_t)N * s.P * s.Q * K;
  float *x = (float *)malloc(nx * 4), *w = (float *)malloc(nw * 4), *dy = (float *)malloc(ny * 4);
  unsigned sd = 12345;
  for (size_t i = 0; i < nx; i++)
    x[i] = rnd(sd);
  for (size_t i = 0; i < nw; i++)
    w[i] = rnd(sd);
  for (size_t i = 0; i < ny; i++)
    dy[i] = rnd(sd);
  std::vector<double> ry(ny, 0), rdx(nx, 0), rdw(nw, 0);
  for (int n = 0; n < N; n++)
    for (int p = 0; p < s.P; p++)
      for (int q = 0; q < s.Q; q++)
        for (int r = 0; r < R; r++)
          for (int ss = 0; ss < S; ss++) {
            int h = p * stride - pad + r, ww = q * stride - pad + ss;
            if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
            for (int c = 0; c < C; c++)
              for (int k = 0; k < K; k++) {
                size_t xi = (((size_t)n * H + h) * W + ww) * C + c,
                       wi = (((size_t)r * S + ss) * C + c) * K + k,
                       yi = (((size_t)n * s.P + p) * s.Q + q) * K + k;
                ry[yi] += (double)x[xi] * w[wi];
                rdx[xi] += (double)dy[yi] * w[wi];
                rdw[wi] += (double)x[xi] * dy[yi];
              }
          }
  float *y = (float *)malloc(ny * 4), *dx = (float *)malloc(nx * 4), *dw = (float *)malloc(nw * 4);
  for (size_t i = 0; i < ny; i++)
    y[i] = NAN;
  for (size_t i = 0; i < nx; i++)
    dx[i] = NAN;
  for (size_t i = 0; i < nw; i++)
    dw[i] = 0.5f;
  if (!getenv("WONLY")) {
    auto a = Fwd::args(&s, x, w, y);
    emulate<Fwd>(a, Fwd::grid(a));
  } else {
    for (size_t i = 0; i < ny; i++)
      y[i] = ry[i];
    for (size_t i = 0; i < nx; i++)
      dx[i] = rdx[i];
  }
  if (!getenv("WONLY")) {
    auto a = BwdData::args(&s, dy, w, dx);
    emulate<BwdData>(a, BwdData::grid(a));
  }
  WgradPlan plan = wgrad_plan(&s);
  if (plan.splits == 1) {
    auto a = BwdWeight::args(&s, x, dy, dw, plan.chunk, 1);
    emulate<BwdWeight>(a, BwdWeight::grid(a));
  } else {
    int64_t n = (int64_t)nw;
    float *part = (float *)malloc((size_t)plan.splits * n * 4);
    for (int64_t i = 0; i < plan.splits * n; i++)
      part[i] = NAN;
    auto a = BwdWeight::args(&s, x, dy, part, plan.chunk, 0);
    dim3 g = BwdWeight::grid(a);
    if ((int)g.z != plan.splits) printf("  grid.z %u != splits %d\n", g.z, plan.splits);
    emulate<BwdWeight>(a, g);
    for (int64_t i = 0; i < n; i++)
      wgrad_reduce_one(part, plan.splits, n, i, dw);
    free(part);
  }
  for (size_t i = 0; i < nw; i++)
    rdw[i] += 0.5;
  double e1 = maxerr(y, ry.data(), ny), e2 = maxerr(dx, rdx.data(), nx),
         e3 = maxerr(dw, rdw.data(), nw);
  int bad = !(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5);
  printf("%s N%d H%d W%d C%d K%d R%d S%d s%d p%d P%d Q%d splits %d chunk %d: fwd %.2e bwd_data "
         "%.2e bwd_w %.2e\n",
         bad ? "FAIL" : "ok  ", N, H, W, C, K, R, S, stride, pad, s.P, s.Q, plan.splits, plan.chunk,
         e1, e2, e3);
  free(x);
  free(w);
  free(dy);
  free(y);
  free(dx);
  free(dw);
  return bad;
}

int main(int argc, char **argv) {
  int bad = 0;
  if (argc == 10)
    return test(atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
                atoi(argv[6]), atoi(argv[7]), atoi(argv[8]), atoi(argv[9]));
  bad += test(2, 8, 8, 3, 5, 4, 4, 2, 1);
  bad += test(3, 7, 5, 3, 5, 3, 3, 2, 1);
  bad += test(1, 9, 11, 17, 70, 3, 3, 1, 1);
  bad += test(2, 6, 6, 65, 66, 4, 4, 2, 1);
  bad += test(5, 1, 1, 7, 9, 1, 1, 1, 0);
  bad += test(2, 4, 4, 33, 3, 4, 4, 1, 0); // D head style
  bad += test(2, 4, 4, 9, 1, 4, 4, 1, 0);
  bad += test(1, 10, 7, 2, 3, 5, 2, 3, 2);
  bad += test(1, 3, 3, 1, 1, 5, 5, 1, 2);    // kernel larger than image
  bad += test(4, 32, 32, 3, 16, 4, 4, 2, 1); // split-K
  bad += test(8, 17, 19, 5, 7, 3, 3, 1, 1);  // split-K, odd
  bad += test(16, 16, 16, 3, 1, 4, 4, 2, 1); // split-K, K=1
  bad += test(3, 13, 13, 20, 67, 3, 3, 2, 0);
  bad += test(2, 5, 5, 3, 130, 2, 2, 2, 1);
  int total = 14;
  // Random shapes (fixed seed): strides 1-3, pads 0-2, kernels 1-5, odd channel counts.
  unsigned r = 7;
  for (int i = 0; i < 120; i++) {
    auto pick = [&](int n) {
      r = r * 1103515245u + 12345u;
      return (int)((r >> 16) % (unsigned)n);
    };
    int N = pick(4) + 1, H = pick(12) + 1, W = pick(12) + 1, C = pick(40) + 1, K = pick(80) + 1;
    int R = pick(5) + 1, S = pick(5) + 1, st = pick(3) + 1, pd = pick(3);
    conv_shape probe;
    if (conv_shape_make(&probe, N, H, W, C, K, R, S, st, pd)) continue; // no output: skip
    bad += test(N, H, W, C, K, R, S, st, pd);
    total++;
  }
  printf("%d passed, %d failed\n", total - bad, bad);
  return bad != 0;
}
