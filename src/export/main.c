// main.c — ganc-export (all logic in export.c).
#include "core/check.h"
#include "export/export.h"

int main(int argc, char **argv) {
  ganc_h5_no_atexit();
  return ganc_export_main(argc, argv);
}
