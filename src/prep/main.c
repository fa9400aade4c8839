// main.c — ganc-prep: image folder or IDX file → HDF5 shards (all logic in prep.c).
#include "prep/prep.h"

#include "core/check.h"

int main(int argc, char **argv) {
  ganc_h5_no_atexit();
  return ganc_prep_main(argc, argv);
}
