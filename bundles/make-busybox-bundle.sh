#!/bin/bash
# Builds an OCI bundle offline: a rootfs made of Debian's static busybox and its
# applet links, and a config.json from `pyoci spec` that runs a short demo
# instead of an interactive shell.
# Usage: make-busybox-bundle.sh DIR   (DIR is created; an existing rootfs is rebuilt)
set -euo pipefail
dir=${1:?usage: make-busybox-bundle.sh DIR}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "make-busybox-bundle: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
pyoci=${PYOCI:-pyoci}
top=$(cd "$(dirname "$0")/.." && pwd)
command -v "$pyoci" >/dev/null || pyoci="$top/.venv/bin/pyoci"

rm -rf "$dir/rootfs"
mkdir -p "$dir/rootfs"
root=$(cd "$dir/rootfs" && pwd)
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home,var,run}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list-full); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"

rm -f "$dir/config.json"
"$pyoci" spec --bundle "$dir"
# A demo that shows the container's own view, and needs no terminal.
python3 - "$dir/config.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    config = json.load(f)
config["process"]["terminal"] = False
config["process"]["args"] = ["sh", "-c", "echo \"hello from $(hostname): pid $$\"; ps"]
with open(path, "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
PY
echo "$dir"
