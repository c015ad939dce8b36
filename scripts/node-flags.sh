# How node runs Cradle, sourced by scripts/daemon.sh and written into the
# .deb's /usr/bin/cradle by scripts/build-deb.sh. A node daemon idles mostly
# in its own binary's pages and V8's heap; these keep the heap's young
# generation at 1 MiB semi-spaces, V8 to one helper thread and glibc to two
# malloc arenas, which took ~10 MiB off the daemon's RSS with no cost seen in
# the benchmarks (docs/BENCHMARKS.md, 2026-12-02).
CRADLE_NODE_FLAGS='--max-semi-space-size=1 --v8-pool-size=1'
CRADLE_MALLOC_ARENA_MAX=2
