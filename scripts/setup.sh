#!/usr/bin/env bash
# Prepares this checkout to run on Debian 12 as root: the Debian packages
# Cradle and its tests use, the npm dependencies (which builds the native
# addon), and the TypeScript build with its bundle. Safe to run again: it
# only does what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run as root: Cradle creates namespaces, mounts and cgroups"
  exit 1
fi

# The container stack (runc, crun, conmon, CNI plugins, CRIU for checkpoints), what the tests use
# to build and serve images (busybox-static, skopeo, docker-registry, zstd),
# namespace tools (util-linux, iproute2, iptables), a PID-namespace init
# (catatonit), the addon's compiler, and the VM lane's emulator and guest
# builder (qemu-system-x86, mmdebstrap, e2fsprogs; see scripts/vm).
PACKAGES=(
  runc crun conmon containernetworking-plugins catatonit criu
  util-linux iproute2 iptables
  busybox-static skopeo docker-registry zstd attr apache2-utils openssl
  g++ make python3
  qemu-system-x86 mmdebstrap e2fsprogs
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl 1.20 from Debian's kubernetes-client, as a real SPDY client for the
# streaming tests. Unpacked into a cache, not installed: it would clash with
# any other kubectl on the machine.
KUBECTL_DIR=/var/cache/cradle-test/kubernetes-client
if [ ! -x "$KUBECTL_DIR/usr/bin/kubectl" ]; then
  log "unpacking Debian's kubectl for the streaming tests"
  tmp=$(mktemp -d)
  chmod 0755 "$tmp"
  # Package lists may be missing when every package above was already installed.
  (cd "$tmp" && { apt-get download -qq kubernetes-client 2>/dev/null || { apt-get update -qq && apt-get download -qq kubernetes-client 2>/dev/null; }; })
  mkdir -p "$KUBECTL_DIR"
  dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$KUBECTL_DIR"
  rm -rf "$tmp"
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  log "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

# npm ci (which also builds the addon through the install script) only when
# package-lock.json changed since the last run.
stamp=node_modules/.cradle-lock.sha256
want=$(sha256sum package-lock.json package.json native/binding.gyp | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -f native/build/Release/cradle_native.node ]; then
  log "installing npm dependencies and building the native addon"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# The addon's sources may have changed without the lock file changing.
if [ -n "$(find native/src -newer native/build/Release/cradle_native.node -print -quit)" ]; then
  log "rebuilding the native addon"
  npm run --silent build:native >/dev/null
fi

log "compiling TypeScript and bundling the daemon"
npm run --silent build
