// main.c — ganc-train (all logic in train.c).
#include "train/train.h"

int main(int argc, char **argv) { return ganc_train_main(argc, argv); }
