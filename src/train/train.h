// train.h — ganc-train's entry point, kept in the library so tests can reach it.
#ifndef GANC_TRAIN_H
#define GANC_TRAIN_H

#include "core/check.h"
#include "core/prof.h" // ganc_train_benchmark's profile

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Runs ganc-train with the given command line; returns the exit status (see --help).
int ganc_train_main(int argc, char **argv);

typedef struct ganc_step_timing {
  double median_ms, min_ms; // per whole iteration (D step + G step + EMA), after warm-up
  double img_per_s;         // batch / median
  int batch;
  size_t peak_bytes; // most backend memory held in the timed steps (device bytes on CUDA; 0: CPU)
  int graph;         // the timed steps replayed one captured CUDA graph (train.cuda_graph)
  double host_ms;    // median host time to issue one iteration (on a GPU: launches, uploads);
                     // near median_ms when the host, not the device, limits the step
  char device[256];
} ganc_step_timing;

// Times `steps` training iterations of `config` (plus --set style overrides) on synthetic batches
// after `warmup` untimed ones, on `device` ("auto", "cpu", "cuda"). The iteration is exactly
// ganc-train's. With `profile` (NULL: none), `steps` more iterations run eagerly (no CUDA graph)
// with every op timed (core/prof.h), and *profile is that profile (the caller frees it). Returns
// 0, or -1 with err set.
int ganc_train_benchmark(const char *config, const char *const *sets, int nsets, const char *device,
                         int warmup, int steps, ganc_step_timing *out, ganc_prof **profile,
                         ganc_err *err);

#ifdef __cplusplus
}
#endif

#endif
