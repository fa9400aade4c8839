// comm_mpi.c — ranks and collectives over MPI (comm.h says what each promises). Compiled when
// CMake finds MPI; comm_none.c otherwise.
#include "core/comm.h"

#include "core/comm_nccl.h"
#include "ops/dispatch.h" // backend memory ↔ host

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Every MPI call is checked: the default error handler aborts the job without saying which call
// failed, so comm_init switches MPI_COMM_WORLD to MPI_ERRORS_RETURN and this names it.
#define CHECK_MPI(call)                                                                            \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != MPI_SUCCESS) mpi_fail(rc_, #call, __FILE__, __LINE__);                              \
  } while (0)

static void mpi_fail(int rc, const char *call, const char *file, int line) {
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fprintf(stderr,
          "error: %s failed (%s:%d): %s\n---> HINT: another rank has probably stopped; its own "
          "message says why. The last checkpoint in the run folder is intact: --resume from it\n",
          call, file, line, msg);
  MPI_Abort(MPI_COMM_WORLD, GANC_EXIT_RUNTIME);
  exit(GANC_EXIT_RUNTIME);
}

typedef struct mpi_state {
  char what[96];
  void *send, *recv; // host staging of ganc_comm_sum_host (grow-only)
  size_t cap;        // bytes of each
  void *host;        // the CUDA backend's copy of a block without NCCL (grow-only)
  size_t host_cap;
  void *nccl; // comm_nccl.c's state on the CUDA backend (NULL: through host memory)
  int mpi;    // MPI was started (else: one rank that sums through NCCL, below)
} mpi_state;

int ganc_comm_built(void) { return 1; }

// The launchers' variables: Open MPI's mpirun, MPICH/Intel MPI's hydra, PMIx (Open MPI 5, Slurm
// --mpi=pmix), Slurm's own.
static int launcher_size(void) {
  const char *v[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    const char *s = getenv(v[i]);
    if (s && atoi(s) > 0) return atoi(s);
  }
  return getenv("PMIX_RANK") ? 2 : 0; // PMIx without a size variable: launched, size from MPI
}

int ganc_comm_init(ganc_comm *c, int *argc, char ***argv, ganc_err *err) {
  memset(c, 0, sizeof *c);
  c->size = c->local_size = 1;
  c->what = "one process";
  int launched = launcher_size();
  // A plain start (no launcher, or srun of a single task) never touches MPI: no singleton start,
  // nothing for tests, sanitizers or users to pay.
  if (launched <= 1) {
    // GANC_NCCL_ONE_RANK=1: one rank whose sums still go through NCCL on the CUDA backend (a
    // one-rank communicator needs no MPI), so a machine with one GPU and no mpirun checks the
    // NCCL path: the run must equal a plain one bit for bit (tests/gpu/run.sh, step nccl).
    const char *one = getenv("GANC_NCCL_ONE_RANK");
    if (one && !strcmp(one, "1")) {
      mpi_state *s = xcalloc(1, sizeof *s);
      snprintf(s->what, sizeof s->what, "one rank, sums through NCCL (GANC_NCCL_ONE_RANK)");
      c->what = s->what;
      c->impl = s;
    }
    return 0;
  }
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS) {
    ganc_err_set(err, GANC_EXIT_RUNTIME,
                 "a launcher started %d ranks but MPI_Init failed\n---> HINT: run with the mpirun "
                 "of the MPI ganc was built with (see `ganc-train --help`)",
                 launched);
    return -1;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &c->rank));
  CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &c->size));
  const char *slurm = getenv("SLURM_NTASKS");
  if (c->size <= 1 && slurm && atoi(slurm) > 1) {
    // srun without an MPI plugin: every task would be a one-rank job writing the same run.
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "srun started %s tasks but MPI sees each as a job of one\n---> HINT: launch with "
                 "`srun --mpi=pmix ...` (or pmi2), or with mpirun",
                 slurm);
    MPI_Finalize();
    return -1;
  }
  MPI_Comm node;
  CHECK_MPI(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node));
  CHECK_MPI(MPI_Comm_rank(node, &c->local_rank));
  CHECK_MPI(MPI_Comm_size(node, &c->local_size));
  CHECK_MPI(MPI_Comm_free(&node));
  mpi_state *s = xcalloc(1, sizeof *s);
  s->mpi = 1;
  char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
  int len = 0;
  MPI_Get_library_version(lib, &len);
  lib[strcspn(lib, ",\n")] = 0; // "Open MPI v4.1.4, package: ..." → "Open MPI v4.1.4"
  snprintf(s->what, sizeof s->what, "MPI, %d ranks (%s)", c->size, lib);
  c->what = s->what;
  c->impl = s;
  return 0;
}

void ganc_comm_finalize(ganc_comm *c) {
  mpi_state *s = c->impl;
  if (!s) return;
  ganc_comm_nccl_free(s->nccl);
  free(s->send);
  free(s->recv);
  free(s->host);
  const int mpi = s->mpi;
  free(s);
  c->impl = NULL;
  if (mpi) MPI_Finalize();
}

// Room for n bytes in each staging buffer.
static void stage(mpi_state *s, size_t n) {
  if (n <= s->cap) return;
  free(s->send);
  free(s->recv);
  s->send = xmalloc(n);
  s->recv = xmalloc(n);
  s->cap = n;
}

// Owners' chunks are at most this many elements: MPI counts are ints.
enum { MAX_CHUNK = 1 << 26 };

void ganc_comm_sum_host(ganc_comm *c, void *buf, size_t n, int dbl) {
  if (c->size <= 1 || n == 0) return;
  mpi_state *s = c->impl;
  const int N = c->size;
  const size_t es = dbl ? sizeof(double) : sizeof(float);
  const MPI_Datatype type = dbl ? MPI_DOUBLE : MPI_FLOAT;
  for (size_t at = 0; at < n;) { // segments of at most N·MAX_CHUNK elements
    size_t seg = n - at, chunk = (seg + (size_t)N - 1) / (size_t)N;
    if (chunk > MAX_CHUNK) chunk = MAX_CHUNK, seg = chunk * (size_t)N;
    stage(s, chunk * (size_t)N * es);
    char *base = (char *)buf + at * es, *send = s->send, *recv = s->recv;
    memcpy(send, base, seg * es);
    memset(send + seg * es, 0, (chunk * (size_t)N - seg) * es); // the last owner's padding
    // Reduce-scatter by hand: rank r receives chunk r of every rank, in rank order...
    CHECK_MPI(MPI_Alltoall(send, (int)chunk, type, recv, (int)chunk, type, MPI_COMM_WORLD));
    // ... and adds them in that order (the one sum order of comm.h), into send's chunk r...
    if (dbl) {
      double *r = (double *)recv, *o = (double *)send + (size_t)c->rank * chunk;
      for (size_t k = 0; k < chunk; k++) {
        double v = r[k];
        for (int q = 1; q < N; q++)
          v += r[(size_t)q * chunk + k];
        o[k] = v;
      }
    } else {
      float *r = (float *)recv, *o = (float *)send + (size_t)c->rank * chunk;
      for (size_t k = 0; k < chunk; k++) {
        float v = r[k];
        for (int q = 1; q < N; q++)
          v += r[(size_t)q * chunk + k];
        o[k] = v;
      }
    }
    // ... then every rank gathers every owner's sums.
    CHECK_MPI(MPI_Allgather(MPI_IN_PLACE, 0, type, send, (int)chunk, type, MPI_COMM_WORLD));
    memcpy(base, send, seg * es);
    at += seg;
  }
}

void ganc_comm_sum(ganc_comm *c, ganc_ctx *ctx, void *buf, size_t n, int dbl) {
  mpi_state *s = c->impl;
  const int one_rank_nccl = s && !s->mpi && ctx->backend == GANC_BACKEND_CUDA;
  if ((c->size <= 1 && !one_rank_nccl) || n == 0) return;
  if (ctx->backend == GANC_BACKEND_CPU) {
    ganc_comm_sum_host(c, buf, n, dbl);
    return;
  }
  if (!s->nccl) s->nccl = ganc_comm_nccl_init(c, ctx);
  if (s->nccl) {
    ganc_comm_nccl_sum(s->nccl, ctx, buf, n, dbl);
    return;
  }
  if (one_rank_nccl)
    ganc_die(GANC_EXIT_RUNTIME, "GANC_NCCL_ONE_RANK=1, but no NCCL library could be opened\n---> "
                                "HINT: set GANC_NCCL_LIB to the path of libnccl.so.2");
  // No NCCL in this build: through host memory (a buffer of its own, kept between steps: the
  // staging buffers are sum_host's).
  const size_t bytes = n * (dbl ? sizeof(double) : sizeof(float));
  if (bytes > s->host_cap) {
    free(s->host);
    s->host = xmalloc(bytes);
    s->host_cap = bytes;
  }
  ganc_download_bytes(ctx, s->host, buf, bytes);
  ganc_comm_sum_host(c, s->host, n, dbl);
  ganc_upload_bytes(ctx, buf, s->host, bytes);
}

void ganc_comm_bcast(ganc_comm *c, void *buf, size_t n, int root) {
  if (c->size <= 1) return;
  for (size_t at = 0; at < n; at += MAX_CHUNK) {
    size_t m = n - at < MAX_CHUNK ? n - at : MAX_CHUNK;
    CHECK_MPI(MPI_Bcast((char *)buf + at, (int)m, MPI_BYTE, root, MPI_COMM_WORLD));
  }
}

unsigned ganc_comm_and(ganc_comm *c, unsigned bits) {
  if (c->size <= 1) return bits;
  unsigned out = 0;
  CHECK_MPI(MPI_Allreduce(&bits, &out, 1, MPI_UNSIGNED, MPI_BAND, MPI_COMM_WORLD));
  return out;
}

void ganc_comm_barrier(ganc_comm *c) {
  if (c->size > 1) CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
}
