// comm.h — data-parallel ranks: who this process is among the ranks of one training job, and the
// collectives the trainer needs (sums of gradient blocks, batch-norm partials, small broadcasts).
//
// Launch: under `mpirun -np N` (Open MPI, MPICH) or Slurm's `srun` the ranks come from MPI; a
// process started any other way is one rank and touches no MPI at all (no singleton start), so
// ganc without a launcher behaves exactly as before. Built without MPI (no MPI development files
// at configure time), every process is one rank and a launch by mpirun is refused with a message.
// One implementation file is compiled: comm_mpi.c or comm_none.c (CMakeLists.txt chooses).
//
// Sums are deterministic and identical on every rank: a buffer is cut into one chunk per rank,
// each rank receives every rank's copy of its chunk and adds them in rank order (0, 1, ..., N−1),
// then every rank gathers every sum. Same N, same inputs: same bits, on every rank, every run —
// the parameters of the ranks never drift apart, and two identical runs agree bit for bit. The
// traffic is a reduce-scatter plus an all-gather, 2·(N−1)/N of the buffer per rank, as a ring's.
// On the CUDA backend a sum goes through NCCL when ganc was built with it (comm_nccl.c), else
// through host memory.
#ifndef GANC_COMM_H
#define GANC_COMM_H

#include "core/check.h"
#include "core/ctx.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ganc_comm {
  int rank, size;   // this process's rank in [0, size)
  int local_rank;   // rank among the ranks on this node (which GPU to take)
  int local_size;   // ranks on this node
  const char *what; // "MPI (Open MPI 4.1.4)", or "one process"
  void *impl;       // the implementation's own state
} ganc_comm;

// train.batchnorm = sync in effect on ctx: the trainer's ctx->bn_sync (set around its steps) over
// more than one rank — batch norms then take the statistics of every rank's rows.
static inline int ganc_bn_synced(const ganc_ctx *ctx) {
  return ctx->bn_sync && ctx->comm && ctx->comm->size > 1;
}

// 1 when this build can run several ranks (built with MPI).
int ganc_comm_built(void);
// Starts the ranks when a launcher started this process (mpirun/srun), else one rank. Returns 0,
// or -1 with err set (a launch this build cannot serve, a launcher whose ranks MPI cannot see).
int ganc_comm_init(ganc_comm *c, int *argc, char ***argv, ganc_err *err);
// Ends MPI (after every rank has called it); a one-rank comm has nothing to end.
void ganc_comm_finalize(ganc_comm *c);
// Σ over ranks of buf[n] in backend memory of ctx (floats, or doubles when dbl), in place, the
// same bits on every rank (order above). A no-op with one rank.
void ganc_comm_sum(ganc_comm *c, ganc_ctx *ctx, void *buf, size_t n, int dbl);
// The same on host memory.
void ganc_comm_sum_host(ganc_comm *c, void *buf, size_t n, int dbl);
// Copies root's buf[n bytes] to every rank.
void ganc_comm_bcast(ganc_comm *c, void *buf, size_t n, int root);
// Bitwise AND of `bits` over the ranks, on every rank: one flag a rank clears (a non-finite
// loss, a stop signal) is cleared for all, so every rank leaves the loop at the same step.
unsigned ganc_comm_and(ganc_comm *c, unsigned bits);
void ganc_comm_barrier(ganc_comm *c);
// Seconds of the median of `reps` sums of n floats on ctx's backend after `warmup` (ganc-bench).
double ganc_comm_time_sum(ganc_comm *c, ganc_ctx *ctx, float *buf, size_t n, int warmup, int reps);

#ifdef __cplusplus
}
#endif

#endif
