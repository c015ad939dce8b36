#!/usr/bin/env bash
# Builds the Cradle Debian package from this checkout:
#   ./scripts/build-deb.sh [--no-setup] [OUTPUT_DIR]      (default: ./build)
# It sets the checkout up first (scripts/setup.sh: packages, npm ci, the
# addon, tsc and the bundle; --no-setup when that is done), then stages
# /usr/lib/cradle (the bundled JS, the addon, production node_modules, the
# proto, and the node binary it was built with), the `cradle` launcher, the
# default config, the CNI example, the systemd unit and the docs, and packs
# them with dpkg-deb.
#
# Why the package carries its own node: Cradle needs Node.js >= 20 and
# Debian 12's nodejs is 18, so a Depends: on Debian's package could not be
# met, and one on a third-party repository's would tie the node to whatever
# that repository ships next. The addon is N-API, so it does not care, but
# the JS was tested with this node; carrying it keeps package and runtime one.
set -euo pipefail
cd "$(dirname "$0")/.."
setup=1
if [ "${1:-}" = --no-setup ]; then setup=0; shift; fi
out="$(realpath -m "${1:-build}")"
[ "$setup" = 1 ] && bash scripts/setup.sh >&2

version="$(node -p 'require("./package.json").version')"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
lib="$stage/usr/lib/cradle"

install -d "$lib/native/build/Release" "$lib/cri/proto" "$lib/bin"
# The bundled JS (scripts/bundle.mjs: the tests are not in it) and the
# licence texts of the packages bundled into it.
install -d "$lib/dist"
cp -r dist/bundle "$lib/dist/bundle"
install -m 0644 native/build/Release/cradle_native.node "$lib/native/build/Release/"
install -m 0644 cri/proto/*.proto "$lib/cri/proto/"
install -m 0644 package.json package-lock.json "$lib/"
# Production dependencies only, without install scripts (the addon is built above).
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -f "$lib/package-lock.json"
install -m 0755 "$(command -v node)" "$lib/bin/node"

install -d "$stage/usr/bin"
. scripts/node-flags.sh
cat > "$stage/usr/bin/cradle" <<LAUNCHER
#!/bin/sh
# The node this package was built and tested with (see /usr/share/doc/cradle),
# with the flags scripts/node-flags.sh explains.
MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-$CRADLE_MALLOC_ARENA_MAX} exec /usr/lib/cradle/bin/node $CRADLE_NODE_FLAGS /usr/lib/cradle/dist/bundle/cradle.js "\$@"
LAUNCHER
chmod 0755 "$stage/usr/bin/cradle"

install -d "$stage/etc/cradle/cradle.d"
node dist/bundle/cradle.js config --default > "$stage/etc/cradle/cradle.toml"
cat > "$stage/etc/cradle/cradle.d/README" <<'DROPINS'
Drop-ins: every *.toml here is merged over /etc/cradle/cradle.toml, in
lexical order (e.g. 50-registries.toml). `cradle config` prints the result.
DROPINS
install -D -m 0644 packaging/cradle.service "$stage/lib/systemd/system/cradle.service"
install -D -m 0644 packaging/cni/10-cradle-bridge.conflist "$stage/usr/share/cradle/cni/10-cradle-bridge.conflist"
install -d "$stage/usr/share/doc/cradle"
install -m 0644 README.md docs/*.md "$stage/usr/share/doc/cradle/"

install -d "$stage/DEBIAN"
installed_kb="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$installed_kb/" packaging/deb/control > "$stage/DEBIAN/control"
echo /etc/cradle/cradle.toml > "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do install -m 0755 "packaging/deb/$script" "$stage/DEBIAN/$script"; done

mkdir -p "$out"
deb="$out/cradle_${version}_${arch}.deb"
# xz for a package to ship; the VM lane asks for none: packing and unpacking under emulation cost more than the bytes.
dpkg-deb --root-owner-group "-Z${CRADLE_DEB_COMPRESSION:-xz}" --build "$stage" "$deb" >&2
echo "$deb"
