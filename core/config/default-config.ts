/**
 * The configuration Cradle runs with when /etc/cradle/cradle.toml does not
 * exist. `cradle config --default` prints it; packaging installs it as the
 * commented starting point for operators.
 */
export const DEFAULT_CONFIG_TOML = `# Cradle configuration. Files in the drop-in directory next to this file
# (cradle.d/*.toml for cradle.toml) are merged over it in lexical order.
# Durations are written like "90s", "1m30s", "4h".

# Persistent state: images, layers, container and pod records.
root = "/var/lib/cradle"
# Volatile state, emptied by a reboot: namespace pins, conmon sockets, exit files.
runroot = "/run/cradle"
# The CRI socket kubelet and crictl connect to.
listen = "/run/cradle/cradle.sock"
# cgroupfs or systemd; must match kubelet's --cgroup-driver.
cgroup_manager = "cgroupfs"
# RuntimeHandler used when a pod names none.
default_runtime = "runc"
# How long in-flight requests may run on SIGTERM before the daemon exits anyway.
shutdown_timeout = "10s"

[log]
# error, warn, info or debug. SIGHUP re-reads it.
level = "info"
# text, json, or auto (text on a terminal, json otherwise).
format = "auto"

# One table per RuntimeHandler. root (the OCI runtime's state dir) defaults to
# <runroot>/<name>.
[runtimes.runc]
path = "/usr/bin/runc"
type = "oci"

# crun needs a pure cgroup v2 host.
[runtimes.crun]
path = "/usr/bin/crun"
type = "oci"

[conmon]
path = "/usr/bin/conmon"

[cni]
# Network configs (*.conflist, *.conf, *.json); the first valid one in lexical
# order is the pod network.
conf_dir = "/etc/cni/net.d"
# Searched in order for plugin binaries.
bin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]
# A plugin call that takes longer is killed and the request fails.
plugin_timeout = "1m"

[sandbox]
# Size of each pod's /dev/shm tmpfs (pods in the host's IPC namespace use the host's).
shm_size = "64Mi"
# PID 1 of pods that share a PID namespace (pid: POD, also what an unset
# namespace option means); it must be a static binary that reaps orphans.
pod_init = "/usr/bin/catatonit"

[containers]
# conmon truncates a container's log file when it grows past this ("0": no
# limit; kubelet rotates logs itself through ReopenContainerLog).
log_size_max = "0"
# rlimits every container starts with, as NAME=SOFT[:HARD] (e.g.
# "nofile=1048576:1048576"); empty: they inherit conmon's.
default_ulimits = []
# On hosts with AppArmor: the profile for containers that ask for
# RuntimeDefault or for nothing. It must be loaded (apparmor_parser) before
# containers use it; "unconfined" leaves them unconfined. Localhost profiles
# are checked to be loaded too. Without AppArmor on the host nothing is set.
apparmor_default_profile = "unconfined"
# GetContainerEvents: how many events a subscriber may fall behind before it
# is cut off with RESOURCE_EXHAUSTED (kubelet then relists and subscribes again).
events_buffer = 1000

[image]
# Registries reached over plain http (host or host:port).
insecure_registries = []
# A docker config.json-style file with credentials for registries that
# requests carry none for; empty for none.
credentials_file = ""

# Mirrors per registry, tried in order before the registry itself:
# "docker.io" = ["mirror.example:5000"]
[image.mirrors]

[streaming]
# Exec, attach and port-forward are served here; keep it on loopback unless
# the API server reaches the node's address directly.
address = "127.0.0.1"
# 0 picks a free port at start.
port = 0
# Streams without traffic for this long are closed.
idle_timeout = "4h"
# How long a URL handed out by Exec/Attach/PortForward stays valid.
token_ttl = "1m"

[stats]
# How often every pod's and container's stats are read in one pass, for the
# stats calls (ListContainerStats, ListPodSandboxStats, their metrics) to
# answer from; "0s" reads them on each call instead. With hundreds of pods
# a period such as "10s" (kubelet's own) keeps those calls to a few ms, at
# the cost of figures up to one period old. Changes apply on reload.
collection_period = "0s"

[metrics]
# The Prometheus endpoint (GET /metrics, text format; names in
# docs/METRICS.md): off while address is empty. Loopback is the sensible
# address; "127.0.0.1" and port 9090 serve it where Prometheus expects a
# node's runtime. 0 picks a free port at start (the log says which).
# Read at start: a change takes effect after a restart.
address = ""
port = 9090

[tracing]
# OTLP/HTTP export of each CRI call's trace (the call and its steps as
# spans; names in docs/TRACING.md) to a collector, e.g.
# "http://127.0.0.1:4318/v1/traces": off while endpoint is empty. The steps'
# durations are in the debug log and "cradle bench --breakdown" either way.
# Read at start: a change takes effect after a restart.
endpoint = ""
# How many of a million calls are exported (1000000: all).
sampling_rate_per_million = 1000000
`;
