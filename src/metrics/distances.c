// distances.c — FID, KID, precision/recall between feature sets (distances.h says what each is).
#include "metrics/distances.h"

#include "core/philox.h"
#include "core/util.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// LAPACK's symmetric eigensolver from OpenBLAS (Fortran interface: no LAPACKE header needed; the
// two trailing lengths are gfortran's hidden lengths of the character arguments).
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

enum { ROWS_PER_BLOCK = 1024 };   // rows widened to double at a time (covariance, distances)
enum { GANC_RNG_KID = 0x4b4944 }; // "KID": the Philox stream of KID's subsets

int ganc_feat_stats_compute(const float *f, int64_t n, int d, ganc_feat_stats *s, ganc_err *err) {
  memset(s, 0, sizeof *s);
  if (n < 2 || d < 1) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "feature statistics need at least 2 rows of at least 1 feature (got %lld x %d)",
                 (long long)n, d);
    return -1;
  }
  s->d = d;
  s->n = n;
  s->mu = xcalloc((size_t)d, sizeof(double));
  s->cov = xcalloc((size_t)d * d, sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int k = 0; k < d; k++)
      s->mu[k] += f[i * d + k];
  for (int k = 0; k < d; k++)
    s->mu[k] /= (double)n;
  // cov += Xᵀ X over blocks of centred rows (the upper triangle; mirrored below).
  double *x = xmalloc(sizeof(double) * (size_t)ROWS_PER_BLOCK * d);
  for (int64_t at = 0; at < n; at += ROWS_PER_BLOCK) {
    const int m = n - at < ROWS_PER_BLOCK ? (int)(n - at) : ROWS_PER_BLOCK;
    for (int i = 0; i < m; i++)
      for (int k = 0; k < d; k++)
        x[(size_t)i * d + k] = (double)f[(at + i) * d + k] - s->mu[k];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, m, 1.0, x, d, 1.0, s->cov, d);
  }
  free(x);
  for (int i = 0; i < d; i++)
    for (int j = i; j < d; j++) {
      const double v = s->cov[(size_t)i * d + j] / (double)(n - 1);
      s->cov[(size_t)i * d + j] = s->cov[(size_t)j * d + i] = v;
    }
  return 0;
}

void ganc_feat_stats_free(ganc_feat_stats *s) {
  free(s->mu);
  free(s->cov);
  memset(s, 0, sizeof *s);
}

// Eigen-decomposition of the symmetric a [n, n] (overwritten by the eigenvectors, one per
// column in column-major order), eigenvalues ascending into w.
static int sym_eig(double *a, int n, double *w, ganc_err *err) {
  int info = 0, lwork = -1, liwork = -1, iw = 0;
  double wq = 0;
  dsyevd_("V", "U", &n, a, &n, w, &wq, &lwork, &iw, &liwork, &info, 1, 1);
  if (info == 0) {
    lwork = (int)wq + 1;
    liwork = iw;
    double *work = xmalloc(sizeof(double) * (size_t)lwork);
    int *iwork = xmalloc(sizeof(int) * (size_t)liwork);
    dsyevd_("V", "U", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
  }
  if (info != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME,
                 "the eigendecomposition of a %dx%d covariance failed (LAPACK dsyevd info %d)", n,
                 n, info);
    return -1;
  }
  return 0;
}

int ganc_fid(const ganc_feat_stats *a, const ganc_feat_stats *b, double *fid, ganc_err *err) {
  if (a->d != b->d) {
    ganc_err_set(err, GANC_EXIT_USAGE, "the feature sets have %d and %d features per image", a->d,
                 b->d);
    return -1;
  }
  const int d = a->d;
  const size_t dd = (size_t)d * d;
  double *v = xmalloc(sizeof(double) * dd), *w = xmalloc(sizeof(double) * (size_t)d);
  double *r = xmalloc(sizeof(double) * dd), *t = xmalloc(sizeof(double) * dd);
  int rc = -1;
  // √S_a = V diag(√λ) Vᵀ: scale V's columns by λ^¼, then R = (V λ^¼)(V λ^¼)ᵀ.
  memcpy(v, a->cov, sizeof(double) * dd);
  if (sym_eig(v, d, w, err)) goto done;
  for (int j = 0; j < d; j++) {
    const double q = w[j] > 0 ? sqrt(sqrt(w[j])) : 0.0;
    for (int i = 0; i < d; i++)
      v[(size_t)j * d + i] *= q;
  }
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, v, d, v, d, 0.0, r, d);
  // M = √S_a S_b √S_a, symmetric PSD; the trace of its root from its eigenvalues.
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, r, d, b->cov, d, 0.0, t, d);
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, t, d, r, d, 0.0, v, d);
  for (int i = 0; i < d; i++) // rounding leaves M a hair off symmetric
    for (int j = i + 1; j < d; j++)
      v[(size_t)i * d + j] = v[(size_t)j * d + i] =
          0.5 * (v[(size_t)i * d + j] + v[(size_t)j * d + i]);
  if (sym_eig(v, d, w, err)) goto done;
  double tr_root = 0, tr_a = 0, tr_b = 0, mean2 = 0;
  for (int i = 0; i < d; i++) {
    tr_root += w[i] > 0 ? sqrt(w[i]) : 0.0;
    tr_a += a->cov[(size_t)i * d + i];
    tr_b += b->cov[(size_t)i * d + i];
    const double dm = a->mu[i] - b->mu[i];
    mean2 += dm * dm;
  }
  *fid = mean2 + tr_a + tr_b - 2.0 * tr_root;
  rc = 0;
done:
  free(v);
  free(w);
  free(r);
  free(t);
  return rc;
}

// m of the n rows of f, drawn without replacement (a partial Fisher-Yates shuffle keyed by
// Philox(seed, stream KID, row = subset)), widened to double into out [m, d].
static void draw_rows(const float *f, int64_t n, int d, int m, uint64_t seed, uint64_t subset,
                      uint32_t which, int64_t *idx, double *out) {
  for (int64_t i = 0; i < n; i++)
    idx[i] = i;
  for (int i = 0; i < m; i++) {
    // 64 random bits per draw: the modulo bias is below 2⁻³² for any n here.
    const uint64_t u =
        ((uint64_t)ganc_rng_u32(seed, GANC_RNG_KID, subset, 4u * (uint32_t)i + 2u * which) << 32) |
        ganc_rng_u32(seed, GANC_RNG_KID, subset, 4u * (uint32_t)i + 2u * which + 1u);
    const int64_t j = i + (int64_t)(u % (uint64_t)(n - i));
    const int64_t tmp = idx[i];
    idx[i] = idx[j];
    idx[j] = tmp;
    for (int k = 0; k < d; k++)
      out[(size_t)i * d + k] = f[idx[i] * d + k];
  }
}

// Σ of k over the entries of the Gram matrix g [m, m] (p = x·y): (p / d + 1)³; skip_diag: the
// sum without the diagonal.
static double kernel_sum(const double *g, int m, int d, int skip_diag) {
  double s = 0;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < m; j++) {
      if (skip_diag && i == j) continue;
      const double k = g[(size_t)i * m + j] / d + 1.0;
      s += k * k * k;
    }
  return s;
}

int ganc_kid(const float *a, int64_t na, const float *b, int64_t nb, int d, int subsets, int size,
             uint64_t seed, double *mean, double *std, ganc_err *err) {
  int64_t m64 = size;
  if (na < m64) m64 = na;
  if (nb < m64) m64 = nb;
  if (m64 < 2 || subsets < 1 || d < 1) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "KID needs subsets of at least 2 rows from each set (got %lld and %lld rows, "
                 "subset size %d, %d subsets)",
                 (long long)na, (long long)nb, size, subsets);
    return -1;
  }
  const int m = (int)m64;
  double *x = xmalloc(sizeof(double) * (size_t)m * d), *y = xmalloc(sizeof(double) * (size_t)m * d);
  double *g = xmalloc(sizeof(double) * (size_t)m * m), *val = xmalloc(sizeof(double) * subsets);
  int64_t *idx = xmalloc(sizeof(int64_t) * (size_t)(na > nb ? na : nb));
  for (int s = 0; s < subsets; s++) {
    draw_rows(b, nb, d, m, seed, (uint64_t)s, 0, idx, x); // generated, as StyleGAN2-ADA: x
    draw_rows(a, na, d, m, seed, (uint64_t)s, 1, idx, y); // real: y
    double sa = 0, sb = 0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0, x, d, x, d, 0.0, g, m);
    sa += kernel_sum(g, m, d, 1);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0, y, d, y, d, 0.0, g, m);
    sa += kernel_sum(g, m, d, 1);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0, x, d, y, d, 0.0, g, m);
    sb = kernel_sum(g, m, d, 0);
    val[s] = (sa / (m - 1) - 2.0 * sb / m) / m;
  }
  double mu = 0, var = 0;
  for (int s = 0; s < subsets; s++)
    mu += val[s];
  mu /= subsets;
  for (int s = 0; s < subsets; s++)
    var += (val[s] - mu) * (val[s] - mu);
  *mean = mu;
  *std = subsets > 1 ? sqrt(var / subsets) : 0.0;
  free(x);
  free(y);
  free(g);
  free(val);
  free(idx);
  return 0;
}

// sq[i] = |p_i|² in double for the n rows of p [n, d].
static double *sq_norms(const float *p, int64_t n, int d) {
  double *sq = xmalloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int c = 0; c < d; c++)
      s += (double)p[i * d + c] * p[i * d + c];
    sq[i] = s;
  }
  return sq;
}

// The squared distances from every row of q [nq, d] to every row of p [np, d], block by block
// through dgemm (|a|² + |b|² − 2 a·b in double): visit(user, i, j0, d2, mj) sees row i of q
// against rows j0 .. j0 + mj − 1 of p, clamped at 0, and exactly 0 for a row and itself when q is
// p.
typedef void (*dist_visit)(void *user, int64_t i, int64_t j0, const double *d2, int mj);

static void block_distances(const float *q, int64_t nq, const float *p, int64_t np, int d,
                            dist_visit visit, void *user) {
  double *sq = sq_norms(q, nq, d), *sp = q == p ? sq : sq_norms(p, np, d);
  double *xa = xmalloc(sizeof(double) * (size_t)ROWS_PER_BLOCK * d);
  double *xb = xmalloc(sizeof(double) * (size_t)ROWS_PER_BLOCK * d);
  double *g = xmalloc(sizeof(double) * (size_t)ROWS_PER_BLOCK * ROWS_PER_BLOCK);
  double *d2 = xmalloc(sizeof(double) * ROWS_PER_BLOCK);
  for (int64_t i0 = 0; i0 < nq; i0 += ROWS_PER_BLOCK) {
    const int mi = nq - i0 < ROWS_PER_BLOCK ? (int)(nq - i0) : ROWS_PER_BLOCK;
    for (size_t t = 0; t < (size_t)mi * d; t++)
      xa[t] = q[i0 * d + (int64_t)t];
    for (int64_t j0 = 0; j0 < np; j0 += ROWS_PER_BLOCK) {
      const int mj = np - j0 < ROWS_PER_BLOCK ? (int)(np - j0) : ROWS_PER_BLOCK;
      for (size_t t = 0; t < (size_t)mj * d; t++)
        xb[t] = p[j0 * d + (int64_t)t];
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, mj, d, 1.0, xa, d, xb, d, 0.0, g,
                  mj);
      for (int i = 0; i < mi; i++) {
        for (int j = 0; j < mj; j++) {
          const double v = sq[i0 + i] + sp[j0 + j] - 2.0 * g[(size_t)i * mj + j];
          d2[j] = (q == p && i0 + i == j0 + j) || v < 0 ? 0.0 : v;
        }
        visit(user, i0 + i, j0, d2, mj);
      }
    }
  }
  if (sp != sq) free(sp);
  free(sq);
  free(xa);
  free(xb);
  free(g);
  free(d2);
}

// knn_radii's state: the k + 1 smallest squared distances of each row, ascending.
typedef struct knn {
  int k;
  double *best; // [np, k + 1]
} knn;

static void knn_visit(void *user, int64_t i, int64_t j0, const double *d2, int mj) {
  (void)j0;
  knn *s = user;
  double *bi = s->best + (size_t)i * (s->k + 1);
  for (int j = 0; j < mj; j++) {
    if (d2[j] >= bi[s->k]) continue;
    int q = s->k;
    while (q > 0 && bi[q - 1] > d2[j]) {
      bi[q] = bi[q - 1];
      q--;
    }
    bi[q] = d2[j];
  }
}

// For each row i of p [np, d]: the (k+1)-th smallest squared distance to the rows of p (itself,
// at 0, included: its k-th nearest other row), into r2 [np].
static void knn_radii(const float *p, int64_t np, int d, int k, double *r2) {
  knn s = {k, xmalloc(sizeof(double) * (size_t)np * (k + 1))};
  for (size_t i = 0; i < (size_t)np * (k + 1); i++)
    s.best[i] = INFINITY;
  block_distances(p, np, p, np, d, knn_visit, &s);
  for (int64_t i = 0; i < np; i++)
    r2[i] = s.best[(size_t)i * (k + 1) + k];
  free(s.best);
}

// coverage's state: the balls' squared radii, and which rows of q are inside one.
typedef struct cover {
  const double *r2;
  char *in;
} cover;

static void cover_visit(void *user, int64_t i, int64_t j0, const double *d2, int mj) {
  cover *s = user;
  for (int j = 0; j < mj && !s->in[i]; j++)
    s->in[i] = d2[j] <= s->r2[j0 + j];
}

// The fraction of the rows of q inside at least one ball of p (centres p, squared radii r2).
static double coverage(const float *p, int64_t np, const double *r2, const float *q, int64_t nq,
                       int d) {
  cover s = {r2, xcalloc((size_t)nq, 1)};
  block_distances(q, nq, p, np, d, cover_visit, &s);
  int64_t hit = 0;
  for (int64_t i = 0; i < nq; i++)
    hit += s.in[i];
  free(s.in);
  return (double)hit / (double)nq;
}

int ganc_precision_recall(const float *real, int64_t nr, const float *fake, int64_t nf, int d,
                          int k, double *precision, double *recall, ganc_err *err) {
  if (k < 1 || nr <= k || nf <= k || d < 1) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "precision/recall with k = %d needs more than k rows in each set (got %lld real, "
                 "%lld generated)",
                 k, (long long)nr, (long long)nf);
    return -1;
  }
  double *rr = xmalloc(sizeof(double) * (size_t)nr), *rf = xmalloc(sizeof(double) * (size_t)nf);
  knn_radii(real, nr, d, k, rr);
  knn_radii(fake, nf, d, k, rf);
  *precision = coverage(real, nr, rr, fake, nf, d);
  *recall = coverage(fake, nf, rf, real, nr, d);
  free(rr);
  free(rf);
  return 0;
}
