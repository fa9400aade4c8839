// comm_nccl.h — the CUDA backend's sums through NCCL (comm_nccl.c), for comm_mpi.c. Built when
// CMake finds NCCL next to the CUDA toolkit; comm_nccl_none.c otherwise (sums then go through
// host memory).
#ifndef GANC_COMM_NCCL_H
#define GANC_COMM_NCCL_H

#include "core/comm.h"

// A NCCL communicator over the MPI ranks on ctx's device (the unique id broadcast by MPI), or
// NULL when this build has no NCCL.
void *ganc_comm_nccl_init(ganc_comm *c, ganc_ctx *ctx);
// Σ over ranks of device buf[n] (floats, or doubles when dbl), in place, on ctx's stream; waits.
void ganc_comm_nccl_sum(void *nccl, ganc_ctx *ctx, void *buf, size_t n, int dbl);
void ganc_comm_nccl_free(void *nccl);

#endif
