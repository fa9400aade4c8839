// lecam_core.h — the LeCam regulariser's arithmetic (Tseng et al. 2021, "Regularizing Generative
// Adversarial Networks under Limited Data"), written once for both compilers (the
// augment_core.h way): the CPU twin (src/ops/loss.c) and the CUDA kernel (kernels/loss.cu) call
// these functions, so both compute the same bits by construction.
//
// What it adds to D's loss, weight λ, over a batch of n logits:
//   reals:  λ · mean relu(l − α_F)²     α_F: a moving average of D's mean output on fakes
//   fakes:  λ · mean relu(α_R − l)²     α_R: the same on reals
// pulling D's outputs on reals down towards where it puts fakes, and on fakes up towards the
// reals: a D that memorises its few reals drives its two outputs apart, and this is what bounds
// that (the paper shows it a weighted LeCam divergence; it adds to DiffAugment, not instead).
// Only the gradient is added (∂/∂l = ±2λ·relu(·)/n into dlogit); the anchors take no gradient.
//
// The moving averages (state, double [4], on the backend):
//   state[0], state[1]  the biased averages of the reals' and the fakes' batch means: m ← d·m +
//                       (1 − d)·mean, decay d (0.99 in the paper)
//   state[2]            d^k after k updates (1 at the start), for the zero-debiased anchors
//                       α = m / (1 − d^k) (the paper's TensorFlow code debiases the same way)
//   state[3]            the reals' batch mean of this step, kept from the reals' call to the fakes'
// The reals' call reads α_F and records its mean; the fakes' call reads α_R, then updates both
// averages with this step's two means. So a step's anchors are the averages of the steps before it
// (the paper's code includes the current batch: a lag of one step in ~100), and the first step
// (k = 0, no average yet) adds nothing. A resume restores state[0..2] (train/checkpoint.c).
//
// The batch mean is a long sum (ops/sum_order.h: lane t of 256 sums the logits t, t + 256, ... in
// order, then the halving tree), so the CPU and the GPU agree to the bit.
#ifndef GANC_LECAM_CORE_H
#define GANC_LECAM_CORE_H

#include "ops/sum_order.h" // ganc_dmul, GANC_LONG_LANES, ganc_tree_level

#include <math.h>
#include <stddef.h>
#include <stdio.h>

// The anchor a call regularises towards: α_F for the reals' call (fake = 0), α_R for the fakes'.
// *on = 0 before the first update (nothing to anchor to yet).
GANC_HD static inline double ganc_lecam_anchor(const double *state, int fake, int *on) {
  *on = state[2] < 1.0;
  return *on ? state[fake ? 0 : 1] / (1.0 - state[2]) : 0.0;
}

// Lane t's share of a call over logit [n]: adds the gradient of its logits into dlogit (when on)
// and returns the lane's sum of the logits (for the batch mean).
GANC_HD static inline double ganc_lecam_lane(int t, int n, const float *logit, int fake,
                                             float weight, double anchor, int on, float *dlogit) {
  const double g = 2.0 * (double)weight; // exact
  double sum = 0.0;
  for (int i = t; i < n; i += GANC_LONG_LANES) {
    const double l = (double)logit[i];
    sum += l;
    if (!on) continue;
    const double r = fake ? anchor - l : l - anchor;
    if (r > 0.0) {
      const double d = ganc_dmul(g, r) / (double)n;
      dlogit[i] = dlogit[i] + (float)(fake ? -d : d);
    }
  }
  return sum;
}

// After the tree: the batch mean `total / n` recorded (reals) or both averages updated (fakes).
GANC_HD static inline void ganc_lecam_finish(double *state, int fake, float decay, double total,
                                             int n) {
  const double mean = total / (double)n, d = (double)decay, e = 1.0 - d;
  if (!fake) {
    state[3] = mean;
    return;
  }
  state[0] = ganc_dmul(d, state[0]) + ganc_dmul(e, state[3]);
  state[1] = ganc_dmul(d, state[1]) + ganc_dmul(e, mean);
  state[2] = ganc_dmul(d, state[2]);
}

// The starting state (no average yet).
static inline void ganc_lecam_init(double state[4]) {
  state[0] = state[1] = state[3] = 0.0;
  state[2] = 1.0;
}

// NULL when the arguments are valid, else what is wrong, written to buf.
static inline const char *ganc_lecam_invalid(int n, float weight, float decay, const void *state,
                                             char *buf, size_t len) {
  if (n < 1) {
    snprintf(buf, len, "no logits (n = %d)", n);
    return buf;
  }
  if (!(weight >= 0.0f && weight <= 1e6f)) {
    snprintf(buf, len, "weight %g outside [0, 1e6]", (double)weight);
    return buf;
  }
  if (!(decay >= 0.0f && decay < 1.0f)) {
    snprintf(buf, len, "decay %g outside [0, 1)", (double)decay);
    return buf;
  }
  if (!state) {
    snprintf(buf, len, "no state");
    return buf;
  }
  return NULL;
}

#endif
