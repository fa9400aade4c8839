// comm.c — what every build's ranks share, whichever implementation (comm_mpi.c, comm_none.c).
#include "core/comm.h"

#include "core/device.h" // the stopwatch
#include "core/util.h"

#include <stdlib.h>

// Each repetition starts together (a barrier) so the time is the sum's, not a late rank's wait;
// every rank returns the median of its own times (ganc-bench prints rank 0's).
double ganc_comm_time_sum(ganc_comm *c, ganc_ctx *ctx, float *buf, size_t n, int warmup, int reps) {
  if (reps < 1) reps = 1;
  double *t = xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < warmup + reps; i++) {
    ganc_comm_barrier(c);
    double t0;
    ganc_stopwatch_start(ctx, &t0);
    ganc_comm_sum(c, ctx, buf, n, 0);
    double ms = ganc_stopwatch_ms(ctx, t0);
    if (i >= warmup) t[i - warmup] = ms * 1e-3;
  }
  qsort(t, (size_t)reps, sizeof(double), ganc_cmp_double);
  double med = t[reps / 2];
  free(t);
  return med;
}
