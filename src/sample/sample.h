// sample.h — ganc-sample's entry point, kept in the library so tests can reach it.
#ifndef GANC_SAMPLE_H
#define GANC_SAMPLE_H

#include <stdint.h>

// Runs ganc-sample with the given command line; returns the exit status (see --help).
int ganc_sample_main(int argc, char **argv);

// A checkpoint's G_ema for other programs (ganc-metrics): images of seeds exactly as
// `ganc-sample --seeds` draws them (seed s: its latent, and class s mod classes when
// conditional). Exits with a message on a checkpoint it cannot use, as ganc-sample.
typedef struct ganc_generator ganc_generator;
ganc_generator *ganc_generator_open(const char *ckpt_or_run, const char *device, int batch);
void ganc_generator_shape(const ganc_generator *g, int *R, int *C);
// Images of seeds seed0 .. seed0 + n − 1 (n <= batch) into images [n, R, R, C].
void ganc_generator_seeds(ganc_generator *g, int64_t seed0, int n, uint8_t *images);
const char *ganc_generator_path(const ganc_generator *g); // the checkpoint file
void ganc_generator_close(ganc_generator *g);

#endif
