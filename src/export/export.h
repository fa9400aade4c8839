// export.h — ganc-export's entry point, kept in the library so tests can reach it.
#ifndef GANC_EXPORT_H
#define GANC_EXPORT_H

#ifdef __cplusplus
extern "C" {
#endif

// Runs ganc-export with the given command line; returns the exit status (see --help).
int ganc_export_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
