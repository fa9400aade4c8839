// train.h — ganc-train's entry point, kept in the library so tests can reach it.
#ifndef GANC_TRAIN_H
#define GANC_TRAIN_H

// Runs ganc-train with the given command line; returns the exit status (see --help).
int ganc_train_main(int argc, char **argv);

#endif
