// prof.c — the step profile of prof.h.
#include "core/prof.h"

#include "core/check.h"
#include "core/device.h" // ganc_mark, ganc_mark_ms: the backend's marks
#include "core/util.h"   // ganc_cmp_double

#include <stdlib.h>
#include <string.h>

// One place: where an op ran, and which op. The strings as first seen are kept twice: the
// pointers (the next steps pass the same ones: a match costs four compares) and a copy (the
// report may outlive the networks that named them).
typedef struct {
  const char *pnet, *pnode, *psub, *ppass, *op; // op: ops.def's name, a string literal
  char net[16], node[64], pass[24];
  double calls; // over all steps
} prof_key;

struct ganc_prof {
  int max_steps, steps;
  const char *net, *node, *sub, *pass; // the place now (ganc_prof_where)
  int depth;                           // ops open now (nested ones are not recorded)
  // This step's records: record r is its place and marks 2r, 2r + 1.
  int *rec_key;
  int nrec, caprec;
  double *host_t; // the CPU's marks (2 per record)
  int cursor;     // the place after the last one matched: the next step repeats the order
  prof_key *keys;
  int nkeys, capkeys;
  double *ms;      // [capkeys][max_steps]: each place's time in each step
  double *step_ms; // [max_steps]: each step's own time
  double *ops_ms;  // [max_steps]: the sum of its ops' times
  ganc_ctx *ctx;   // the context of the step under way (step_begin to step_end)
};

ganc_prof *ganc_prof_new(int max_steps) {
  if (max_steps < 1)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: a profile of %d steps", max_steps);
  ganc_prof *p = xcalloc(1, sizeof *p);
  p->max_steps = max_steps;
  p->step_ms = xcalloc((size_t)max_steps, sizeof(double));
  p->ops_ms = xcalloc((size_t)max_steps, sizeof(double));
  return p;
}

void ganc_prof_free(ganc_prof *p) {
  if (!p) return;
  free(p->rec_key);
  free(p->host_t);
  free(p->keys);
  free(p->ms);
  free(p->step_ms);
  free(p->ops_ms);
  free(p);
}

void ganc_prof_where(ganc_prof *p, const char *net, const char *node, const char *sub,
                     const char *pass) {
  p->net = net;
  p->node = node;
  p->sub = sub;
  p->pass = pass;
}

static int same(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static int key_matches(const prof_key *k, const ganc_prof *p, const char *op) {
  if (k->op != op && strcmp(k->op, op)) return 0;
  if (k->pnet == p->net && k->pnode == p->node && k->psub == p->sub && k->ppass == p->pass)
    return 1;
  return same(k->pnet, p->net) && same(k->pnode, p->node) && same(k->psub, p->sub) &&
         same(k->ppass, p->pass);
}

static int find_key(ganc_prof *p, const char *op) {
  for (int j = 0; j < p->nkeys; j++) {
    const int i = (p->cursor + j) % p->nkeys;
    if (key_matches(&p->keys[i], p, op)) {
      p->cursor = (i + 1) % p->nkeys;
      return i;
    }
  }
  if (p->nkeys == p->capkeys) {
    const int cap = p->capkeys ? 2 * p->capkeys : 64;
    p->keys = xrealloc(p->keys, sizeof(prof_key) * (size_t)cap);
    p->ms = xrealloc(p->ms, sizeof(double) * (size_t)cap * (size_t)p->max_steps);
    memset(p->ms + (size_t)p->capkeys * (size_t)p->max_steps, 0,
           sizeof(double) * (size_t)(cap - p->capkeys) * (size_t)p->max_steps);
    p->capkeys = cap;
  }
  prof_key *k = &p->keys[p->nkeys];
  memset(k, 0, sizeof *k);
  k->pnet = p->net, k->pnode = p->node, k->psub = p->sub, k->ppass = p->pass, k->op = op;
  snprintf(k->net, sizeof k->net, "%s", p->net ? p->net : "step");
  if (p->sub)
    snprintf(k->node, sizeof k->node, "%s/%s", p->node ? p->node : "", p->sub);
  else
    snprintf(k->node, sizeof k->node, "%s", p->node ? p->node : "-");
  snprintf(k->pass, sizeof k->pass, "%s", p->pass ? p->pass : "-");
  p->cursor = 0;
  return p->nkeys++;
}

int ganc_prof_begin(ganc_ctx *ctx, const char *op) {
  ganc_prof *p = ctx->prof;
  if (!p) return -1;
  if (p->depth++) return -2;
  if (p->ctx != ctx)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: op %s profiled outside a profiled step", op);
  if (p->nrec == p->caprec) {
    p->caprec = p->caprec ? 2 * p->caprec : 256;
    p->rec_key = xrealloc(p->rec_key, sizeof(int) * (size_t)p->caprec);
    p->host_t = xrealloc(p->host_t, sizeof(double) * 2 * (size_t)p->caprec);
  }
  const int r = p->nrec++;
  p->rec_key[r] = find_key(p, op);
  ganc_mark(ctx, 2 * r, p->host_t);
  return r;
}

void ganc_prof_end(ganc_ctx *ctx, int rec) {
  ganc_prof *p = ctx->prof;
  if (!p || p->depth < 1) ganc_die(GANC_EXIT_RUNTIME, "internal error: profile end without begin");
  p->depth--;
  if (rec >= 0) ganc_mark(ctx, 2 * rec + 1, p->host_t);
}

void ganc_prof_step_begin(ganc_ctx *ctx) {
  ganc_prof *p = ctx->prof;
  if (!p) ganc_die(GANC_EXIT_RUNTIME, "internal error: a profiled step without a profile");
  if (p->steps == p->max_steps)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: a profile of %d steps given more", p->max_steps);
  p->ctx = ctx;
  p->nrec = 0;
  p->depth = 0;
  p->cursor = 0;
  ganc_prof_where(p, NULL, NULL, NULL, NULL);
}

void ganc_prof_step_end(ganc_ctx *ctx, double step_ms) {
  ganc_prof *p = ctx->prof;
  if (!p || p->ctx != ctx) ganc_die(GANC_EXIT_RUNTIME, "internal error: step end without begin");
  if (p->depth) ganc_die(GANC_EXIT_RUNTIME, "internal error: a step ended inside an op");
  const int s = p->steps;
  double sum = 0;
  for (int r = 0; r < p->nrec; r++) {
    const double t = ganc_mark_ms(ctx, 2 * r, 2 * r + 1, p->host_t);
    p->ms[(size_t)p->rec_key[r] * (size_t)p->max_steps + (size_t)s] += t;
    p->keys[p->rec_key[r]].calls += 1;
    sum += t;
  }
  p->ops_ms[s] = sum;
  p->step_ms[s] = step_ms;
  p->steps++;
  p->ctx = NULL;
}

// The median of v[0..n) (n >= 1), v left sorted.
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), ganc_cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double median_of(const double *src, int n) {
  double *v = xmalloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  memcpy(v, src, sizeof(double) * (size_t)n);
  const double m = n > 0 ? median(v, n) : 0.0;
  free(v);
  return m;
}

int ganc_prof_steps(const ganc_prof *p) { return p->steps; }
int ganc_prof_places(const ganc_prof *p) { return p->nkeys; }
double ganc_prof_step_median(const ganc_prof *p) { return median_of(p->step_ms, p->steps); }
double ganc_prof_ops_median(const ganc_prof *p) { return median_of(p->ops_ms, p->steps); }

int ganc_prof_place(const ganc_prof *p, int i, const char **net, const char **node,
                    const char **pass, const char **op, double *median_ms, double *calls) {
  if (i < 0 || i >= p->nkeys) return -1;
  const prof_key *k = &p->keys[i];
  if (net) *net = k->net;
  if (node) *node = k->node;
  if (pass) *pass = k->pass;
  if (op) *op = k->op;
  if (median_ms) *median_ms = median_of(p->ms + (size_t)i * (size_t)p->max_steps, p->steps);
  if (calls) *calls = p->steps ? k->calls / p->steps : 0.0;
  return 0;
}

typedef struct {
  int key;      // a place (by place), or the first place of the op (by op)
  double ms;    // median per step
  double calls; // per step
} prof_row;

static int cmp_row(const void *a, const void *b) {
  const prof_row *x = a, *y = b;
  if (x->ms != y->ms) return x->ms < y->ms ? 1 : -1; // longest first
  return x->key - y->key;                            // then in order of first appearance
}

void ganc_prof_report(const ganc_prof *p, FILE *out, int top, double graph_ms, FILE *csv) {
  const int S = p->steps, K = p->nkeys;
  if (S < 1) {
    fprintf(out, "profile: no step recorded\n");
    return;
  }
  const double step = ganc_prof_step_median(p), ops = ganc_prof_ops_median(p);
  fprintf(out,
          "profile: %d steps run eagerly, a mark before and after each of their ops:\n"
          "profile:   a step %.3f ms (median), its ops %.3f ms (%.0f%%); the rest, %.3f ms, lies "
          "between the ops (launches, gaps, host work)\n",
          S, step, ops, step > 0 ? 100.0 * ops / step : 0.0, step - ops);
  if (graph_ms > 0)
    fprintf(out, "profile:   the same step replayed as one CUDA graph: %.3f ms (%.3f ms %s)\n",
            graph_ms, step > graph_ms ? step - graph_ms : graph_ms - step,
            step > graph_ms ? "less" : "more");

  // By op: each op's time per step summed over its places, then the median over the steps.
  prof_row *rows = xcalloc((size_t)(K > 0 ? K : 1), sizeof(prof_row));
  double *per = xmalloc(sizeof(double) * (size_t)S);
  int nops = 0;
  for (int i = 0; i < K; i++) {
    int seen = 0;
    for (int j = 0; j < i && !seen; j++)
      seen = !strcmp(p->keys[j].op, p->keys[i].op);
    if (seen) continue;
    double calls = 0;
    for (int s = 0; s < S; s++)
      per[s] = 0;
    for (int j = i; j < K; j++)
      if (!strcmp(p->keys[j].op, p->keys[i].op)) {
        calls += p->keys[j].calls;
        for (int s = 0; s < S; s++)
          per[s] += p->ms[(size_t)j * (size_t)p->max_steps + (size_t)s];
      }
    rows[nops++] = (prof_row){i, median(per, S), calls / S};
  }
  qsort(rows, (size_t)nops, sizeof(prof_row), cmp_row);
  fprintf(out, "profile: by op (ms per step, medians over the steps)\n");
  fprintf(out, "  %-28s %8s %9s %6s\n", "op", "calls", "ms", "share");
  for (int r = 0; r < nops; r++)
    fprintf(out, "  %-28s %8.1f %9.4f %5.1f%%\n", p->keys[rows[r].key].op, rows[r].calls,
            rows[r].ms, ops > 0 ? 100.0 * rows[r].ms / ops : 0.0);

  // By place.
  for (int i = 0; i < K; i++) {
    rows[i].key = i;
    ganc_prof_place(p, i, NULL, NULL, NULL, NULL, &rows[i].ms, &rows[i].calls);
  }
  qsort(rows, (size_t)K, sizeof(prof_row), cmp_row);
  const int shown = top > 0 && top < K ? top : K;
  fprintf(out, "profile: by place, the %d longest of %d\n", shown, K);
  fprintf(out, "  %-6s %-22s %-16s %-26s %6s %9s %6s\n", "net", "node", "pass", "op", "calls", "ms",
          "share");
  for (int r = 0; r < shown; r++) {
    const prof_key *k = &p->keys[rows[r].key];
    fprintf(out, "  %-6s %-22s %-16s %-26s %6.1f %9.4f %5.1f%%\n", k->net, k->node, k->pass, k->op,
            rows[r].calls, rows[r].ms, ops > 0 ? 100.0 * rows[r].ms / ops : 0.0);
  }
  if (csv) {
    fprintf(csv, "net,node,pass,op,calls_per_step,median_ms_per_step,share_of_ops\n");
    for (int i = 0; i < K; i++) { // in the order the step runs them
      const prof_key *k = &p->keys[i];
      double ms = 0, calls = 0;
      ganc_prof_place(p, i, NULL, NULL, NULL, NULL, &ms, &calls);
      fprintf(csv, "%s,%s,%s,%s,%.2f,%.6f,%.6f\n", k->net, k->node, k->pass, k->op, calls, ms,
              ops > 0 ? ms / ops : 0.0);
    }
    fprintf(csv, "step,-,eager step,-,1,%.6f,%.6f\n", step, ops > 0 ? step / ops : 0.0);
    if (graph_ms > 0)
      fprintf(csv, "step,-,graph step,-,1,%.6f,%.6f\n", graph_ms, ops > 0 ? graph_ms / ops : 0.0);
  }
  free(per);
  free(rows);
}
