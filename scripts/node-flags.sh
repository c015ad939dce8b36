# How node runs Cradle, sourced by scripts/daemon.sh and written into the
# .deb's /usr/bin/cradle by scripts/build-deb.sh. A node daemon idles mostly
# in its own binary's pages and V8's heap; these keep the heap's young
# generation at 1 MiB semi-spaces, V8 to one helper thread and glibc to two
# malloc arenas, which took ~10 MiB off the daemon's RSS with no cost seen in
# the benchmarks (docs/BENCHMARKS.md, 2026-12-02). No Sparkplug: its baseline
# code for every warm function held 1.3-1.8 MiB of code space once the CRI
# paths had run, for no measurable CPU (150 pods polled: 2.58-2.59% of a core
# without, 2.63-2.64% with; docs/BENCHMARKS.md, 2026-12-03).
CRADLE_NODE_FLAGS='--max-semi-space-size=1 --v8-pool-size=1 --no-sparkplug'
CRADLE_MALLOC_ARENA_MAX=2
