// tb.c — TensorBoard event files (tb.h): Event messages through protobuf-c, framed as TFRecords.
#include "io/tb.h"

#include "core/util.h"
#include "io/tensorboard.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

struct ganc_tb {
  FILE *f;
  char path[4400];
};

// CRC-32C (reflected polynomial 0x82F63B78), bit by bit: a record per report is a few hundred
// bytes and a grid a few dozen KB, so a table would buy nothing worth its state.
uint32_t ganc_crc32c(const void *data, size_t n) {
  const uint8_t *p = data;
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

// TFRecord's mask: a CRC of data that contains CRCs is weak, so the stored value is rotated and
// offset (TensorFlow's record format).
uint32_t ganc_crc32c_masked(const void *data, size_t n) {
  const uint32_t c = ganc_crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

static double wall_now(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

static void put_le(uint8_t *b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    b[i] = (uint8_t)(v >> (8 * i));
}

// Serialises ev and appends it as one record, flushed.
static int write_event(ganc_tb *tb, const GancTb__Event *ev, ganc_err *err) {
  const size_t n = ganc_tb__event__get_packed_size(ev);
  uint8_t *buf = xmalloc(n ? n : 1);
  ganc_tb__event__pack(ev, buf);
  uint8_t head[12], tail[4];
  put_le(head, n, 8);
  put_le(head + 8, ganc_crc32c_masked(head, 8), 4);
  put_le(tail, ganc_crc32c_masked(buf, n), 4);
  int ok = fwrite(head, 1, 12, tb->f) == 12 && fwrite(buf, 1, n, tb->f) == n &&
           fwrite(tail, 1, 4, tb->f) == 4 && fflush(tb->f) == 0;
  free(buf);
  if (!ok) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s", tb->path, strerror(errno));
    return -1;
  }
  return 0;
}

int ganc_tb_open(const char *run_dir, int64_t step, ganc_tb **out, ganc_err *err) {
  *out = NULL;
  ganc_tb *tb = xcalloc(1, sizeof *tb);
  char host[256] = "host";
  if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "host");
  const double now = wall_now();
  // TensorBoard finds event files by "tfevents" in the name and orders them by the name's time.
  snprintf(tb->path, sizeof tb->path, "%s/events.out.tfevents.%lld.%s.%ld.ganc", run_dir,
           (long long)now, host, (long)getpid());
  tb->f = fopen(tb->path, "ab");
  if (!tb->f) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot create %s: %s", tb->path, strerror(errno));
    free(tb);
    return -1;
  }
  GancTb__Event ev = GANC_TB__EVENT__INIT;
  ev.wall_time = now;
  ev.what_case = GANC_TB__EVENT__WHAT_FILE_VERSION;
  ev.file_version = "brain.Event:2";
  GancTb__SessionLog sl = GANC_TB__SESSION_LOG__INIT;
  sl.status = GANC_TB__SESSION_LOG__SESSION_STATUS__START;
  GancTb__Event start = GANC_TB__EVENT__INIT;
  start.wall_time = now;
  start.step = step;
  start.what_case = GANC_TB__EVENT__WHAT_SESSION_LOG;
  start.session_log = &sl;
  if (write_event(tb, &ev, err) || write_event(tb, &start, err)) {
    ganc_tb_close(tb);
    return -1;
  }
  *out = tb;
  return 0;
}

int ganc_tb_scalars(ganc_tb *tb, int64_t step, const char *const *tags, const double *values, int n,
                    ganc_err *err) {
  GancTb__Value *v = xcalloc((size_t)n, sizeof *v);
  GancTb__Value **pv = xcalloc((size_t)n, sizeof *pv);
  for (int i = 0; i < n; i++) {
    ganc_tb__value__init(&v[i]);
    v[i].tag = (char *)tags[i];
    v[i].value_case = GANC_TB__VALUE__VALUE_SIMPLE_VALUE;
    v[i].simple_value = (float)values[i];
    pv[i] = &v[i];
  }
  GancTb__Summary sum = GANC_TB__SUMMARY__INIT;
  sum.n_value = (size_t)n;
  sum.value = pv;
  GancTb__Event ev = GANC_TB__EVENT__INIT;
  ev.wall_time = wall_now();
  ev.step = step;
  ev.what_case = GANC_TB__EVENT__WHAT_SUMMARY;
  ev.summary = &sum;
  int rc = write_event(tb, &ev, err);
  free(pv);
  free(v);
  return rc;
}

int ganc_tb_image(ganc_tb *tb, int64_t step, const char *tag, const uint8_t *png, size_t n, int w,
                  int h, int c, ganc_err *err) {
  GancTb__Image img = GANC_TB__IMAGE__INIT;
  img.height = h;
  img.width = w;
  img.colorspace = c == 1 ? 1 : 3;
  img.encoded_image_string.data = (uint8_t *)png;
  img.encoded_image_string.len = n;
  GancTb__Value v = GANC_TB__VALUE__INIT;
  v.tag = (char *)tag;
  v.value_case = GANC_TB__VALUE__VALUE_IMAGE;
  v.image = &img;
  GancTb__Value *pv = &v;
  GancTb__Summary sum = GANC_TB__SUMMARY__INIT;
  sum.n_value = 1;
  sum.value = &pv;
  GancTb__Event ev = GANC_TB__EVENT__INIT;
  ev.wall_time = wall_now();
  ev.step = step;
  ev.what_case = GANC_TB__EVENT__WHAT_SUMMARY;
  ev.summary = &sum;
  return write_event(tb, &ev, err);
}

const char *ganc_tb_path(const ganc_tb *tb) { return tb->path; }

void ganc_tb_close(ganc_tb *tb) {
  if (!tb) return;
  if (tb->f) fclose(tb->f);
  free(tb);
}
