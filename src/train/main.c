// main.c — ganc-train (all logic in train.c).
#include "train/train.h"

#include "core/check.h"

int main(int argc, char **argv) {
  ganc_h5_no_atexit();
  return ganc_train_main(argc, argv);
}
