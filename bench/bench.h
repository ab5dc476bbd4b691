/* cetcd-bench's modes kept in files of their own. */
#ifndef CETCD_BENCH_H
#define CETCD_BENCH_H

/* watch-fanout mode (fanout.c): argv holds PUTS CONNS WATCHES RATE (argc of them).
 * Returns the process exit code (0, 1 on failure, 2 on bad arguments). */
int bench_fanout(const char *ep, int argc, char **argv);

#endif
