// prof.h — where a training step's time goes (ganc-bench --step --profile): every op of the step
// (each entry of ops.def, and the backend's memsets and copies) timed between two marks
// (core/device.h: CUDA events on the context's stream, or the CPU's clock), and attributed to the
// place it ran for — a network, its node and the pass ("forward", "backward-data", ...) — which
// model and training code name as they go (ganc_prof_at).
//
// Why: the step's median (CUDA events around a replayed graph) says how long a step takes, and
// `ganc-bench --layers` how long each convolution takes alone; neither says what the rest of the
// step costs (batch norm, Adam, losses, augmentation) nor how much is gaps between kernels. That is
// what decides which fusion to build next (docs/PERF.md), and a GPU is at hand for a few minutes
// at a time: one profile of one recipe answers it.
//
// The profiled steps run eagerly (no graph: a captured graph's kernels cannot be told apart), one
// mark before and after each op; an op's time is its kernels' device time plus whatever its
// launches left the stream idle inside it. The sum over ops against the eager step's own time is
// what lies between ops (launch gaps, host work); the graph step against that sum is what the
// graph saved. Ops called from inside another op are timed as part of it.
//
// No global state: the profile hangs from the context (ctx->prof; NULL: none, and every hook below
// returns at once).
#ifndef GANC_PROF_H
#define GANC_PROF_H

#include "core/ctx.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ganc_prof ganc_prof;

// A profile of at most max_steps steps; ganc_prof_free frees it (set ctx->prof to it to start).
ganc_prof *ganc_prof_new(int max_steps);
void ganc_prof_free(ganc_prof *p);

// The place of the ops that follow: network `net`, node `node` (with `sub`, when not NULL, shown
// as node/sub: an unnamed activation after its input), pass `pass`. NULL everywhere: the step
// itself (losses, draws, the batch's upload). The strings are copied when first seen.
void ganc_prof_where(ganc_prof *p, const char *net, const char *node, const char *sub,
                     const char *pass);
static inline void ganc_prof_at(ganc_ctx *ctx, const char *net, const char *node, const char *sub,
                                const char *pass) {
  if (ctx->prof) ganc_prof_where(ctx->prof, net, node, sub, pass);
}

// Around one op (dispatch.c): begin returns a record (>= 0), or -1 with no profile (then end is
// not called), or -2 for an op inside another op (end still called; it is timed as part of the
// outer one).
int ganc_prof_begin(ganc_ctx *ctx, const char *op);
void ganc_prof_end(ganc_ctx *ctx, int rec);

// Around one step: step_end waits for the step's marks and adds its ops' times to the profile,
// with step_ms the step's own time (the stopwatch's).
void ganc_prof_step_begin(ganc_ctx *ctx);
void ganc_prof_step_end(ganc_ctx *ctx, double step_ms);

// The tables: by op, then by place (the `top` longest; 0: all), medians over the steps of each
// one's time per step; graph_ms, when > 0, the replayed graph's step for comparison. csv (NULL:
// none): every place, one row each, with a header.
void ganc_prof_report(const ganc_prof *p, FILE *out, int top, double graph_ms, FILE *csv);

// For tests: the number of steps recorded, places, and place i's fields and figures (median ms
// per step, calls per step); -1 past the end.
int ganc_prof_steps(const ganc_prof *p);
int ganc_prof_places(const ganc_prof *p);
int ganc_prof_place(const ganc_prof *p, int i, const char **net, const char **node,
                    const char **pass, const char **op, double *median_ms, double *calls);
// The median over the steps of a step's own time, and of its ops' sum.
double ganc_prof_step_median(const ganc_prof *p);
double ganc_prof_ops_median(const ganc_prof *p);

#ifdef __cplusplus
}
#endif

#endif
