// comm_none.c — a build without MPI: every process is one rank (comm.h). A launch by mpirun or
// srun is refused: N copies of a one-rank job would all write the same run folder.
#include "core/comm.h"

#include <stdlib.h>
#include <string.h>

int ganc_comm_built(void) { return 0; }

int ganc_comm_init(ganc_comm *c, int *argc, char ***argv, ganc_err *err) {
  (void)argc, (void)argv;
  memset(c, 0, sizeof *c);
  c->size = c->local_size = 1;
  c->what = "one process";
  const char *v[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    const char *s = getenv(v[i]);
    if (s && atoi(s) > 1) {
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "started as one of %s ranks (%s), but this ganc was built without MPI\n---> "
                   "HINT: install Open MPI (apt-get install libopenmpi-dev openmpi-bin) and "
                   "rebuild (scripts/build.sh), or run without mpirun/srun",
                   s, v[i]);
      return -1;
    }
  }
  return 0;
}

void ganc_comm_finalize(ganc_comm *c) { (void)c; }
void ganc_comm_sum(ganc_comm *c, ganc_ctx *ctx, void *buf, size_t n, int dbl) {
  (void)c, (void)ctx, (void)buf, (void)n, (void)dbl;
}
void ganc_comm_sum_host(ganc_comm *c, void *buf, size_t n, int dbl) {
  (void)c, (void)buf, (void)n, (void)dbl;
}
void ganc_comm_bcast(ganc_comm *c, void *buf, size_t n, int root) {
  (void)c, (void)buf, (void)n, (void)root;
}
unsigned ganc_comm_and(ganc_comm *c, unsigned bits) {
  (void)c;
  return bits;
}
void ganc_comm_barrier(ganc_comm *c) { (void)c; }
