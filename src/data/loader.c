// loader.c — the shuffled, prefetching batch loader (order and position rules in loader.h).
#include "data/loader.h"

#include "core/device.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// ---- deterministic shuffles: splitmix64 streams keyed by (seed, epoch, window) ------------------
typedef struct {
  uint64_t s;
} rng64;

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static rng64 rng_for(uint64_t seed, int64_t epoch, uint64_t stream) {
  uint64_t s = seed;
  uint64_t a = splitmix(&s);
  s = a ^ ((uint64_t)epoch * 0xd1342543de82ef95ULL);
  uint64_t b = splitmix(&s);
  s = b ^ (stream * 0xaf251af3b0f025b5ULL);
  return (rng64){splitmix(&s)};
}

// Uniform in [0, n) without modulo bias (Lemire's multiply-shift with rejection).
static uint64_t rng_below(rng64 *r, uint64_t n) {
  uint64_t x = splitmix(&r->s);
  __uint128_t m = (__uint128_t)x * n;
  uint64_t low = (uint64_t)m;
  if (low < n) {
    uint64_t t = -n % n;
    while (low < t) {
      x = splitmix(&r->s);
      m = (__uint128_t)x * n;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

static void shuffle_i64(int64_t *a, int64_t n, rng64 *r) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
    int64_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

// ---- the loader ---------------------------------------------------------------------------------
typedef struct block {
  int shard;
  int64_t start, n; // images [start, start + n) of that shard
  int64_t global;   // global index of its first image
} block;

typedef struct slot {
  ganc_batch b;
  int images_pinned;
  int error; // the producer failed while making this batch
} slot;

struct ganc_loader {
  ganc_dataset ds;
  ganc_loader_opts opts;
  int64_t nblocks;
  block *blocks;
  int64_t window_images; // image capacity of one window

  // Producer-side state (touched only by the thread after start).
  ganc_loader_state pos; // next image to produce
  int64_t *order;        // [nblocks] this epoch's block order
  int64_t nwindows;
  int64_t *win_first;   // [nwindows + 1] index into order[] where each window starts
  int64_t *win_cursor;  // [nwindows + 1] epoch cursor where each window starts
  int64_t layout_epoch; // epoch `order` was built for (-1 none)
  int64_t cur_window;   // window whose permutation is in perm (-1 none)
  int64_t *perm;        // [window_images] image permutation of the current window
  int64_t *loaded;      // [nblocks] sorted block ids now in the buffer
  int64_t nloaded;
  uint8_t *wimages; // [window_images, R, R, C]
  int32_t *wlabels; // [window_images]
  int64_t *windex;  // [window_images] global index
  ganc_err perr;

  // Queue: slots [head, tail) are made; `head` is the one the consumer holds when `holding`.
  slot *slots;
  int nslots;
  int64_t head, tail;
  int holding, stop;
  ganc_loader_state consumer_pos;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int thread_started;
};

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

// Block order and windows of epoch e.
static void layout(ganc_loader *L, int64_t e) {
  for (int64_t i = 0; i < L->nblocks; i++)
    L->order[i] = i;
  rng64 r = rng_for(L->opts.seed, e, 0);
  shuffle_i64(L->order, L->nblocks, &r);
  L->nwindows = 0;
  int64_t imgs = 0, cursor = 0;
  for (int64_t i = 0; i < L->nblocks; i++) {
    int64_t n = L->blocks[L->order[i]].n;
    if (i == 0 || imgs + n > L->window_images) {
      L->win_first[L->nwindows] = i;
      L->win_cursor[L->nwindows] = cursor;
      L->nwindows++;
      imgs = 0;
    }
    imgs += n;
    cursor += n;
  }
  L->win_first[L->nwindows] = L->nblocks;
  L->win_cursor[L->nwindows] = cursor;
  L->layout_epoch = e;
  L->cur_window = -1;
}

// Makes window w of the current epoch resident and its permutation current.
static int load_window(ganc_loader *L, int64_t w) {
  int64_t b0 = L->win_first[w], b1 = L->win_first[w + 1], nb = b1 - b0;
  int64_t *ids = xmalloc(sizeof(int64_t) * (size_t)nb);
  memcpy(ids, L->order + b0, sizeof(int64_t) * (size_t)nb);
  // Canonical arrangement inside a window: blocks by global position. A window holding the same
  // blocks as the one in memory (always the case for a one-window dataset) is not read again.
  qsort(ids, (size_t)nb, sizeof(int64_t), cmp_i64);
  if (nb != L->nloaded || memcmp(ids, L->loaded, sizeof(int64_t) * (size_t)nb) != 0) {
    int64_t at = 0;
    for (int64_t i = 0; i < nb;) {
      // Merge runs of adjacent blocks of one shard into one read.
      const block *first = &L->blocks[ids[i]];
      int64_t n = first->n, j = i + 1;
      while (j < nb && L->blocks[ids[j]].shard == first->shard &&
             L->blocks[ids[j]].start == first->start + n)
        n += L->blocks[ids[j++]].n;
      if (ganc_shard_read(&L->ds, first->shard, first->start, n,
                          L->wimages + (size_t)at * L->ds.image_bytes,
                          L->ds.meta.nclasses > 0 ? L->wlabels + at : NULL, &L->perr)) {
        free(ids);
        L->nloaded = 0;
        return -1;
      }
      for (int64_t k = 0; k < n; k++) {
        L->windex[at + k] = first->global + k;
        if (L->ds.meta.nclasses == 0) L->wlabels[at + k] = -1;
      }
      at += n;
      i = j;
    }
    memcpy(L->loaded, ids, sizeof(int64_t) * (size_t)nb);
    L->nloaded = nb;
  }
  free(ids);
  int64_t m = L->win_cursor[w + 1] - L->win_cursor[w];
  for (int64_t i = 0; i < m; i++)
    L->perm[i] = i;
  rng64 r = rng_for(L->opts.seed, L->layout_epoch, (uint64_t)w + 1);
  shuffle_i64(L->perm, m, &r);
  L->cur_window = w;
  return 0;
}

// Fills one batch from the stream at L->pos.
static int make_batch(ganc_loader *L, ganc_batch *b) {
  size_t ib = L->ds.image_bytes;
  // This rank's rows of the global batch: [first, first + n); the others are stepped over.
  const int first = L->opts.rank * b->n;
  for (int g = 0; g < L->opts.batch; g++) {
    const int i = g - first;
    int64_t at;
    do { // the next image of the stream that is not held out
      if (L->pos.cursor >= L->ds.count) {
        L->pos.epoch++;
        L->pos.cursor = 0;
      }
      if (L->layout_epoch != L->pos.epoch) layout(L, L->pos.epoch);
      int64_t w = L->cur_window;
      if (w < 0 || L->pos.cursor < L->win_cursor[w] || L->pos.cursor >= L->win_cursor[w + 1]) {
        // Windows are few: a linear search from the current one is cheap.
        w = w < 0 || L->pos.cursor < L->win_cursor[w] ? 0 : w;
        while (L->pos.cursor >= L->win_cursor[w + 1])
          w++;
        if (load_window(L, w)) return -1;
      }
      at = L->perm[L->pos.cursor - L->win_cursor[w]];
      L->pos.cursor++;
    } while (L->opts.limit > 0 && L->windex[at] >= L->opts.limit);
    if (i >= 0 && i < b->n) {
      memcpy(b->images + (size_t)i * ib, L->wimages + (size_t)at * ib, ib);
      b->labels[i] = L->wlabels[at];
      b->index[i] = L->windex[at];
    }
  }
  if (L->pos.cursor >= L->ds.count) { // normalise so a saved position has one spelling
    L->pos.epoch++;
    L->pos.cursor = 0;
  }
  b->after = L->pos;
  return 0;
}

static void *producer(void *arg) {
  ganc_loader *L = arg;
  ganc_h5_quiet(); // HDF5's error printing is per thread
  for (;;) {
    pthread_mutex_lock(&L->mu);
    while (!L->stop && L->tail - L->head >= L->nslots)
      pthread_cond_wait(&L->cv, &L->mu);
    if (L->stop) {
      pthread_mutex_unlock(&L->mu);
      return NULL;
    }
    slot *s = &L->slots[L->tail % L->nslots];
    pthread_mutex_unlock(&L->mu);

    int rc = make_batch(L, &s->b); // outside the lock: the consumer may read other slots

    pthread_mutex_lock(&L->mu);
    s->error = rc != 0;
    L->tail++;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    if (rc) return NULL;
  }
}

int ganc_loader_open(const char *dir, const ganc_loader_opts *opts, const ganc_loader_state *start,
                     ganc_loader **out, ganc_err *err) {
  *out = NULL;
  if (opts->batch < 1) {
    ganc_err_set(err, GANC_EXIT_USAGE, "batch size must be at least 1 (got %d)", opts->batch);
    return -1;
  }
  const int ranks = opts->ranks > 0 ? opts->ranks : 1;
  if (opts->rank < 0 || opts->rank >= ranks || opts->batch % ranks) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "a global batch of %d cannot be shared equally by %d ranks (rank %d)\n---> HINT: "
                 "make train.batch a multiple of the number of ranks",
                 opts->batch, ranks, opts->rank);
    return -1;
  }
  ganc_loader *L = xcalloc(1, sizeof *L);
  if (ganc_dataset_open(dir, &L->ds, err)) {
    free(L);
    return -1;
  }
  L->opts = *opts;
  L->opts.ranks = ranks;
  if (opts->limit < 0 || opts->limit > L->ds.count) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "cannot hold out images beyond index %lld of a dataset of %lld images",
                 (long long)opts->limit, (long long)L->ds.count);
    ganc_dataset_close(&L->ds);
    free(L);
    return -1;
  }
  if (L->opts.prefetch <= 0) L->opts.prefetch = 4;
  if (L->opts.window_bytes == 0) L->opts.window_bytes = (size_t)256 << 20;
  if (start) {
    if (start->epoch < 0 || start->cursor < 0 || start->cursor > L->ds.count) {
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "saved loader position (epoch %lld, image %lld) does not fit a dataset of %lld "
                   "images",
                   (long long)start->epoch, (long long)start->cursor, (long long)L->ds.count);
      ganc_dataset_close(&L->ds);
      free(L);
      return -1;
    }
    L->pos = *start;
    L->opts.seed = start->seed;
  } else {
    L->pos = (ganc_loader_state){opts->seed, 0, 0};
  }
  L->consumer_pos = L->pos;

  for (int k = 0; k < L->ds.nshards; k++)
    L->nblocks += (L->ds.shards[k].count + L->ds.shards[k].chunk - 1) / L->ds.shards[k].chunk;
  L->blocks = xmalloc(sizeof(block) * (size_t)L->nblocks);
  int64_t nb = 0, maxblock = 1;
  for (int k = 0; k < L->ds.nshards; k++) {
    const ganc_shard *s = &L->ds.shards[k];
    for (int64_t at = 0; at < s->count; at += s->chunk) {
      int64_t n = s->count - at < s->chunk ? s->count - at : s->chunk;
      L->blocks[nb++] = (block){k, at, n, s->first + at};
      if (n > maxblock) maxblock = n;
    }
  }
  int64_t wi = (int64_t)(L->opts.window_bytes / L->ds.image_bytes);
  if (wi < maxblock) wi = maxblock; // a window holds at least one whole chunk
  if (wi > L->ds.count) wi = L->ds.count;
  L->window_images = wi;
  // A window can hold up to window_images images plus at most one block past the greedy limit
  // (layout() starts a new window before overflowing, so window_images is the true bound).
  L->order = xmalloc(sizeof(int64_t) * (size_t)L->nblocks);
  L->win_first = xmalloc(sizeof(int64_t) * (size_t)(L->nblocks + 1));
  L->win_cursor = xmalloc(sizeof(int64_t) * (size_t)(L->nblocks + 1));
  L->loaded = xmalloc(sizeof(int64_t) * (size_t)L->nblocks);
  L->perm = xmalloc(sizeof(int64_t) * (size_t)wi);
  L->wimages = xmalloc((size_t)wi * L->ds.image_bytes);
  L->wlabels = xmalloc(sizeof(int32_t) * (size_t)wi);
  L->windex = xmalloc(sizeof(int64_t) * (size_t)wi);
  L->layout_epoch = -1;
  L->cur_window = -1;

  L->nslots = L->opts.prefetch + 1; // +1: the batch the consumer holds
  L->slots = xcalloc((size_t)L->nslots, sizeof(slot));
  for (int i = 0; i < L->nslots; i++) {
    ganc_batch *b = &L->slots[i].b;
    b->n = opts->batch / ranks;
    b->images =
        ganc_host_alloc((size_t)b->n * L->ds.image_bytes, opts->pinned, &L->slots[i].images_pinned);
    b->labels = xmalloc(sizeof(int32_t) * (size_t)b->n);
    b->index = xmalloc(sizeof(int64_t) * (size_t)b->n);
  }
  CHECK_ERRNO(pthread_mutex_init(&L->mu, NULL));
  CHECK_ERRNO(pthread_cond_init(&L->cv, NULL));
  CHECK_ERRNO(pthread_create(&L->thread, NULL, producer, L));
  L->thread_started = 1;
  *out = L;
  return 0;
}

const ganc_dataset *ganc_loader_dataset(const ganc_loader *L) { return &L->ds; }

int ganc_loader_next(ganc_loader *L, const ganc_batch **batch, ganc_err *err) {
  pthread_mutex_lock(&L->mu);
  if (L->holding) {
    L->head++;
    L->holding = 0;
    pthread_cond_broadcast(&L->cv);
  }
  while (L->tail <= L->head)
    pthread_cond_wait(&L->cv, &L->mu);
  slot *s = &L->slots[L->head % L->nslots];
  pthread_mutex_unlock(&L->mu);
  if (s->error) {
    // Later calls keep reporting the same failure instead of waiting forever.
    if (err) {
      err->code = 0;
      ganc_err_set(err, L->perr.code, "%s", L->perr.msg);
    }
    *batch = NULL;
    return -1;
  }
  L->holding = 1;
  L->consumer_pos = s->b.after;
  *batch = &s->b;
  return 0;
}

ganc_loader_state ganc_loader_position(const ganc_loader *L) { return L->consumer_pos; }

void ganc_loader_close(ganc_loader *L) {
  if (!L) return;
  if (L->thread_started) {
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->thread, NULL);
    pthread_cond_destroy(&L->cv);
    pthread_mutex_destroy(&L->mu);
  }
  for (int i = 0; i < L->nslots; i++) {
    ganc_host_free(L->slots[i].b.images, L->slots[i].images_pinned);
    free(L->slots[i].b.labels);
    free(L->slots[i].b.index);
  }
  free(L->slots);
  free(L->blocks);
  free(L->order);
  free(L->win_first);
  free(L->win_cursor);
  free(L->loaded);
  free(L->perm);
  free(L->wimages);
  free(L->wlabels);
  free(L->windex);
  ganc_dataset_close(&L->ds);
  free(L);
}
