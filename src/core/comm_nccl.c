// comm_nccl.c — the CUDA backend's sums through NCCL (comm_nccl.h). NCCL's ring and tree
// all-reduces hand every rank the same reduced bits (the reducing rank's result is what is
// copied out), so ranks stay in step as with comm_mpi.c's host sums; the order of the additions
// is NCCL's, fixed for a given topology and rank count.
//
// libnccl is opened at run time (dlopen), not linked: it is 200 MB, one-process runs never need
// it, and a machine may bring its own (the CUDA toolkit's, or PyTorch's nvidia-nccl wheel via
// GANC_NCCL_LIB or LD_LIBRARY_PATH). Without it the sums go through host memory, with a note.
#include "core/comm_nccl.h"

#include "kernels/kernels.h" // ganc_cuda_stream, ganc_cuda_sync

#include <dlfcn.h>
#include <nccl.h> // the types and constants only
#include <stdio.h>
#include <stdlib.h>

typedef struct nccl_state {
  void *lib;
  ncclComm_t comm;
  ncclResult_t (*get_unique_id)(ncclUniqueId *);
  ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
  ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t,
                             cudaStream_t);
  ncclResult_t (*comm_destroy)(ncclComm_t);
  const char *(*error_string)(ncclResult_t);
} nccl_state;

static void check_nccl(nccl_state *s, ncclResult_t r, const char *call, const char *file,
                       int line) {
  if (r == ncclSuccess) return;
  ganc_die(GANC_EXIT_RUNTIME,
           "%s failed (%s:%d): %s\n---> HINT: NCCL_DEBUG=WARN shows why; another rank may have "
           "stopped (its message says why); the last checkpoint is intact",
           call, file, line, s->error_string ? s->error_string(r) : "unknown NCCL error");
}
#define CHECK_NCCL(s, call) check_nccl((s), (call), #call, __FILE__, __LINE__)

void *ganc_comm_nccl_init(ganc_comm *c, ganc_ctx *ctx) {
  (void)ctx; // the communicator binds the current device, which ctx's init selected
  const char *name = getenv("GANC_NCCL_LIB");
  void *lib = dlopen(name && *name ? name : "libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  // Every rank must take the same road: a rank without NCCL would wait in the host sums while
  // the others wait in NCCL.
  unsigned all = ganc_comm_and(c, lib ? 1u : 0u);
  if (!all) {
    if (c->rank == 0 && c->size > 1)
      fprintf(stderr,
              "note: NCCL (libnccl.so.2) not found on every rank: gradients are summed through "
              "host memory (slower)\n---> HINT: set GANC_NCCL_LIB to libnccl.so.2's path\n");
    if (lib) dlclose(lib);
    return NULL;
  }
  nccl_state *s = xcalloc(1, sizeof *s);
  s->lib = lib;
  *(void **)&s->get_unique_id = dlsym(lib, "ncclGetUniqueId");
  *(void **)&s->comm_init_rank = dlsym(lib, "ncclCommInitRank");
  *(void **)&s->all_reduce = dlsym(lib, "ncclAllReduce");
  *(void **)&s->comm_destroy = dlsym(lib, "ncclCommDestroy");
  *(void **)&s->error_string = dlsym(lib, "ncclGetErrorString");
  if (!s->get_unique_id || !s->comm_init_rank || !s->all_reduce || !s->comm_destroy)
    ganc_die(GANC_EXIT_RUNTIME, "%s lacks the NCCL functions ganc calls: %s",
             name && *name ? name : "libnccl.so.2", dlerror());
  ncclUniqueId id;
  if (c->rank == 0) CHECK_NCCL(s, s->get_unique_id(&id));
  ganc_comm_bcast(c, &id, sizeof id, 0);
  CHECK_NCCL(s, s->comm_init_rank(&s->comm, c->size, id, c->rank));
  return s;
}

void ganc_comm_nccl_sum(void *nccl, ganc_ctx *ctx, void *buf, size_t n, int dbl) {
  nccl_state *s = nccl;
  CHECK_NCCL(s, s->all_reduce(buf, buf, n, dbl ? ncclDouble : ncclFloat, ncclSum, s->comm,
                              (cudaStream_t)ganc_cuda_stream(ctx)));
  ganc_cuda_sync(ctx);
}

void ganc_comm_nccl_free(void *nccl) {
  nccl_state *s = nccl;
  if (!s) return;
  s->comm_destroy(s->comm);
  dlclose(s->lib);
  free(s);
}
