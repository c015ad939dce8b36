# How node runs Cradle, sourced by scripts/daemon.sh and written into the
# .deb's /usr/bin/cradle by scripts/build-deb.sh. A node daemon idles mostly
# in its own binary's pages and V8's heap; these keep the heap's young
# generation at 1 MiB semi-spaces, V8 to one helper thread and glibc to two
# malloc arenas, which took ~10 MiB off the daemon's RSS with no cost seen in
# the benchmarks (docs/BENCHMARKS.md, 2026-12-02). No Sparkplug: its baseline
# code for every warm function held 3-4 MiB of RSS once the CRI paths had run
# (100 running containers: 71.7 MiB with it, 67.4-68.3 without), for no CPU
# measured (150 pods polled: 2.63-2.64% of a core with it, 2.58-2.59
# without); the cost is ~0.1 ms more per ListContainers of 500 containers
# inside the daemon (0.28-0.30 with it, 0.38-0.42 without; BENCHMARKS.md,
# 2026-12-03).
CRADLE_NODE_FLAGS='--max-semi-space-size=1 --v8-pool-size=1 --no-sparkplug'
CRADLE_MALLOC_ARENA_MAX=2
