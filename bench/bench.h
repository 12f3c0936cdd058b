/* bench.h - the benchmark program, run as `kgstore bench`. */
#ifndef KG_BENCH_H
#define KG_BENCH_H

/* Entry point of the subcommand; argv[0] is "bench". Returns an exit code. */
int kg_bench_main(int argc, char **argv);

#endif
