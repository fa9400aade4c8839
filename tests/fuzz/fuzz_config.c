// fuzz_config.c — libFuzzer harness for the INI config parser and --set (src/train/config.c).
//
// Input: INI text, then optionally a NUL byte and --set assignments separated by NUL bytes
// ("[train]\nbatch = 8\n\0train.loss=hinge\0model.z_dim=7"). The text is loaded from a string and
// from a file, each assignment applied, the result validated and printed.
// Checks: no crash, leak or undefined behaviour; a failure leaves a message (naming the file, for
// a load) and the config untouched, byte for byte (config.c: "a load works on a copy and changes
// nothing unless the whole text is valid"; --set likewise); a string and a file with the same text
// load the same; and config.h's printing promise: loading ganc_config_to_ini's text gives the same
// config (compared as printed text, since a double may print and read back differently in bytes
// only when printing lost precision, which is the thing to catch).
#include "fuzz_util.h"

#include "train/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void finding2(const char *what, const ganc_config *a, const ganc_config *b) {
  char *ta = ganc_config_to_ini(a), *tb = ganc_config_to_ini(b);
  fprintf(stderr, "FINDING: %s\n--- first:\n%s\n--- second:\n%s\n", what, ta, tb);
  abort();
}

// A config with defined bytes everywhere (padding and the tails of its strings), so that two
// configs can be compared with memcmp.
static void fresh(ganc_config *c) {
  memset(c, 0, sizeof *c);
  ganc_config_defaults(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  memcpy(buf, data, size);
  buf[size] = 0;
  size_t text_len = strlen(buf);

  ganc_config c, before;
  fresh(&c);
  before = c;
  ganc_err err = {0};
  int rc = ganc_config_load_string(&c, buf, "fuzz.ini", &err);
  fz_check_err("ganc_config_load_string", rc, &err, "fuzz.ini");
  if (rc != 0 && memcmp(&before, &c, sizeof c) != 0)
    finding2("a failed load changed the config", &before, &c);

  // The same text from a file: the same outcome.
  const char *path = fz_path(0, "fuzz-file.ini");
  fz_write(path, (const uint8_t *)buf, text_len);
  ganc_config cf;
  fresh(&cf);
  memset(&err, 0, sizeof err);
  int rcf = ganc_config_load_file(&cf, path, &err);
  fz_check_err("ganc_config_load_file", rcf, &err, "fuzz-file.ini");
  if ((rc == 0) != (rcf == 0) || memcmp(&c, &cf, sizeof c) != 0)
    finding2("loading from a string and from a file differ", &c, &cf);

  // --set assignments after the text's NUL.
  for (size_t at = text_len + 1; at <= size; at += strlen(buf + at) + 1) {
    ganc_config mid = c;
    memset(&err, 0, sizeof err);
    int rs = ganc_config_set(&c, buf + at, &err);
    fz_check_err("ganc_config_set", rs, &err, NULL);
    if (rs != 0 && memcmp(&mid, &c, sizeof c) != 0)
      finding2("a failed --set changed the config", &mid, &c);
  }
  memset(&err, 0, sizeof err);
  rc = ganc_config_validate(&c, &err);
  fz_check_err("ganc_config_validate", rc, &err, NULL);

  // Round trip: what to_ini prints loads back to the same config.
  char *text = ganc_config_to_ini(&c);
  ganc_config back;
  fresh(&back);
  memset(&err, 0, sizeof err);
  if (ganc_config_load_string(&back, text, "to_ini", &err) != 0) {
    fprintf(stderr, "FINDING: to_ini's text does not load: %s\n%s\n", err.msg, text);
    abort();
  }
  char *again = ganc_config_to_ini(&back);
  if (strcmp(text, again) != 0) finding2("to_ini -> load -> to_ini differs", &c, &back);
  free(again);
  free(text);
  free(buf);
  return 0;
}
