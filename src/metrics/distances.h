// distances.h — the distances between two sets of image features that practitioners compare GANs
// by (ganc-metrics): FID, KID, and precision/recall. Features are rows of floats (Inception-v3
// pool features for the standard metrics, or any feature network's); all arithmetic is in double.
//
//   FID (Heusel et al. 2017): |mu_a − mu_b|² + tr(S_a) + tr(S_b) − 2 tr((S_a S_b)^½), with the
//       unbiased covariances; the trace of the square root is that of (√S_a S_b √S_a)^½, a
//       symmetric PSD matrix, so both roots come from symmetric eigendecompositions (LAPACK
//       dsyevd) and tiny negative eigenvalues of rounding are taken as 0.
//   KID (Bińkowski et al. 2018), as StyleGAN2-ADA computes it: the unbiased MMD² with the cubic
//       polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over `subsets` random subsets of
//       m = min(size, n_a, n_b) rows drawn without replacement from each set (Philox(seed)).
//   Precision and recall (Kynkäänniemi et al. 2019): each real feature's ball reaches its k-th
//       nearest other real feature; precision is the fraction of generated features inside at
//       least one real ball, recall the fraction of real features inside at least one generated
//       ball (the balls of the generated set, likewise).
#ifndef GANC_DISTANCES_H
#define GANC_DISTANCES_H

#include "core/check.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ganc_feat_stats {
  int d;
  int64_t n;
  double *mu;  // [d]
  double *cov; // [d, d], unbiased (n − 1)
} ganc_feat_stats;

// The mean and covariance of n rows of d features (n >= 2). Returns 0, or -1 with err set.
int ganc_feat_stats_compute(const float *f, int64_t n, int d, ganc_feat_stats *s, ganc_err *err);
void ganc_feat_stats_free(ganc_feat_stats *s);
// FID between two sets' statistics (same d). Returns 0 with *fid set, or -1 with err set.
int ganc_fid(const ganc_feat_stats *a, const ganc_feat_stats *b, double *fid, ganc_err *err);
// KID: its mean and standard deviation over the subsets.
int ganc_kid(const float *a, int64_t na, const float *b, int64_t nb, int d, int subsets, int size,
             uint64_t seed, double *mean, double *std, ganc_err *err);
// Precision and recall of `fake` against `real` with k-th-neighbour balls.
int ganc_precision_recall(const float *real, int64_t nr, const float *fake, int64_t nf, int d,
                          int k, double *precision, double *recall, ganc_err *err);

#ifdef __cplusplus
}
#endif

#endif
