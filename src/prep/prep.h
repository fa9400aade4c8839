// prep.h — ganc-prep's entry point, kept in the library so tests and tools can reach it.
#ifndef GANC_PREP_H
#define GANC_PREP_H

// Runs ganc-prep with the given command line; returns the exit status (see --help).
int ganc_prep_main(int argc, char **argv);

#endif
