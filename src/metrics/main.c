// main.c — ganc-metrics (all logic in metrics.c).
#include "core/check.h"
#include "metrics/metrics.h"

int main(int argc, char **argv) {
  ganc_h5_no_atexit();
  return ganc_metrics_main(argc, argv);
}
