#!/usr/bin/env bash
# Obtains OpenCV's sample clip vtest.avi (PETS 2009 campus footage, 768x576, 795 frames, fixed camera) from
# Debian's opencv-doc package, without root: `apt-get download` + `dpkg-deb --fsys-tarfile`. The clip is not ours
# to commit, so it lands in examples/data/ (git-ignored).
set -uo pipefail
dest="examples/data/vtest.avi"
member="./usr/share/doc/opencv-doc/examples/data/vtest.avi"
[ -s "$dest" ] && exit 0
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fetch() { (cd "$tmp" && apt-get download -qq opencv-doc >/dev/null 2>&1); }
if ! fetch; then
  # A fresh machine has no package lists yet; only root can refresh them.
  [ "$(id -u)" -eq 0 ] && apt-get update -qq >/dev/null 2>&1 && fetch
fi
deb=$(ls "$tmp"/opencv-doc_*.deb 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
  echo "Could not download Debian's opencv-doc package (needs apt and access to Debian's mirror)." >&2
  echo "Place any fixed-camera clip at $dest to get the example site; the app runs without it." >&2
  exit 0
fi
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "$member"
mv "$tmp/$member" "$dest"
echo "example clip: $dest ($(du -h "$dest" | cut -f1))"
