// config.h — training recipes as INI files (configs/*.ini), overridable from the command line.
//
// Every key lives in one table in config.c with its type, default, allowed range or values and a
// one-line description; configs/reference.ini is that table printed (ganc-train --print-config)
// and a test keeps the two equal. Unknown keys, bad values and missing files are errors that name
// the key, the file and line, and what is allowed.
#ifndef GANC_CONFIG_H
#define GANC_CONFIG_H

#include "core/check.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ganc_config {
  // [model]
  char arch[16];         // "dcgan" or "resnet"
  char conditional[8];   // "auto", "yes" or "no" (resolved to yes/no when training starts)
  int classes;           // classes of a conditional model; 0 = the dataset's
  char spectral_norm[8]; // "none", "d" or "gd"
  int resolution;        // 32..256, power of two; 0 = take it from the dataset
  int channels;          // 1 or 3; 0 = take it from the dataset
  int z_dim;             // latent size (nz)
  int g_base;            // generator width at the highest resolution (ngf)
  int d_base;            // discriminator width at the highest resolution (ndf)
  int g_max;             // cap on generator channels
  int d_max;             // cap on discriminator channels
  double bn_eps;         // batch-norm epsilon
  double bn_momentum;    // batch-norm running-statistics momentum (PyTorch convention)
  double lrelu_slope;    // discriminator leaky-ReLU slope
  // [train]
  int batch;                // images per step (per D and G step)
  double kimg;              // training length in thousands of real images shown to D
  char loss[16];            // "logistic" (non-saturating) or "hinge"
  double lecam;             // LeCam regulariser's weight (0: off), ops/lecam_core.h
  double lecam_decay;       // its moving averages' decay per step
  double g_lr, d_lr;        // Adam learning rates
  double beta1, beta2;      // Adam betas
  double adam_eps;          // Adam epsilon
  double ema_kimg;          // half-life of the generator's moving average, in kimg; 0 = no EMA
  double ema_rampup;        // EMA half-life ramp-up as a fraction of images seen; 0 = none
  int mirror;               // 1 = random horizontal flips of real images
  uint64_t seed;            // seeds the initial weights, the latents and the data order
  char device[8];           // "auto", "cpu" or "cuda"
  char backend[8];          // CUDA convolutions: "ganc" (our kernels) or "cudnn"
  int threads;              // CPU threads; 0 = all cores
  char batchnorm[8];        // data-parallel ranks: "local" (each rank's own share) or "sync"
  char precision[8];        // the convolutions' products: "fp32", "tf32" or "bf16" (core/ctx.h)
  char conv_variant[32];    // CUDA convolution kernels: "auto" or a variant's name (kernels.h)
  int fuse_activations;     // 1 = a ReLU / leaky ReLU beside a convolution runs in its epilogue
  int fuse_batchnorm_stats; // 1 = tf32 / bf16: a convolution sums its batch norm's statistics
  int bf16_activations; // 1 = bf16 runs on CUDA keep activations that only bf16 reads need in bf16
  int recompute_batchnorm; // 1 = batch-norm outputs a convolution alone reads are made again for
                           // its backward, not kept (model/net.c)
  char cuda_graph[8];      // "auto", "on" or "off": one captured CUDA graph per step
  // [log]
  double report_kimg;   // one log line every this many kimg
  double snapshot_kimg; // image grid and checkpoint every this many kimg
  int keep;             // checkpoints kept (the newest ones); 0 = keep all
  int grid;             // snapshot grids are grid x grid images
  int tensorboard;      // 1 = TensorBoard event files in the run folder
  int holdout;          // the dataset's last images kept out of training, D judged on them
  // [metrics]
  char metrics_featnet[512]; // FID during training: a feature network file, or "none"
  double metrics_kimg;       // FID every this many kimg; 0 = at every snapshot
  int metrics_n;             // images of each set
  // [data]
  int window_mb; // loader shuffle window in MiB (fixes the data order with the seed)
  // [augment]: DiffAugment on every image D sees
  int aug_color, aug_translation, aug_cutout; // 1 = on
  double aug_translation_ratio;               // shift of up to this fraction of the size
  double aug_cutout_ratio;                    // side of the cut square, as a fraction
  int aug_xflip, aug_rot90;                   // ADA's blit: 1 = on
  double aug_p;            // probability of each augmentation per image (ADA's p; start with ADA)
  double aug_ada_target;   // 0: p fixed; else ADA's target for its signal
  char aug_ada_signal[16]; // "rt" (E[sign(D(x) − mean D(G(z)))], per step) or "holdout" (r_v)
  double aug_ada_kimg;     // ADA: kimg for p to move by 1
  int aug_ada_interval;    // ADA: steps between adjustments
} ganc_config;

// The defaults: the values of configs/reference.ini.
void ganc_config_defaults(ganc_config *c);
// Applies the keys of an INI file / text on top of c. `origin` names the text in messages.
int ganc_config_load_file(ganc_config *c, const char *path, ganc_err *err);
int ganc_config_load_string(ganc_config *c, const char *text, const char *origin, ganc_err *err);
// Applies one "section.key=value" override (from --set).
int ganc_config_set(ganc_config *c, const char *assignment, ganc_err *err);
// Cross-key checks (e.g. resolution a power of two, g_max >= g_base); names the keys involved.
int ganc_config_validate(const ganc_config *c, ganc_err *err);
// The whole config as INI text, every key with its value and its one-line description as a
// comment; loading it back gives the same config. malloc'd.
char *ganc_config_to_ini(const ganc_config *c);

#ifdef __cplusplus
}
#endif

#endif
