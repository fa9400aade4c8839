// main.c — ganc-prep: image folder or IDX file → HDF5 shards (all logic in prep.c).
#include "prep/prep.h"

int main(int argc, char **argv) { return ganc_prep_main(argc, argv); }
