// main.c — ganc-sample, a separate binary (all logic in sample.c).
#include "sample/sample.h"

int main(int argc, char **argv) { return ganc_sample_main(argc, argv); }
