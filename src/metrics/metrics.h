// metrics.h — ganc-metrics' entry point, kept in the library so tests can reach it.
#ifndef GANC_METRICS_H
#define GANC_METRICS_H

#ifdef __cplusplus
extern "C" {
#endif

// Runs ganc-metrics with the given command line; returns the exit status (see --help).
int ganc_metrics_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
