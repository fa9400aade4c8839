// sample.h — ganc-sample's entry point, kept in the library so tests can reach it.
#ifndef GANC_SAMPLE_H
#define GANC_SAMPLE_H

// Runs ganc-sample with the given command line; returns the exit status (see --help).
int ganc_sample_main(int argc, char **argv);

#endif
