// main.c — ganc-sample, a separate binary (all logic in sample.c).
#include "sample/sample.h"

#include "core/check.h"

int main(int argc, char **argv) {
  ganc_h5_no_atexit();
  return ganc_sample_main(argc, argv);
}
