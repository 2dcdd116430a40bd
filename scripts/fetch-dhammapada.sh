#!/usr/bin/env bash
# Fetches the fine-tuning demonstration's corpus: the Dhammapada in F. Max Müller's translation (Sacred Books of
# the East, vol. X, 1881; the Project Gutenberg etext "dhmpd10.txt", public domain), as Debian's
# display-dhammapada package ships it (dhammapada-alternate.txt). Normalized to one verse per line (its verse
# number dropped), a blank line between chapters; the etext's header and contents list are left out. Writes
# data/dhammapada.txt (gitignored) and data/dhammapada.COPYRIGHT, and prints the verse count.
#
# Needs apt-get and dpkg-deb (Debian/Ubuntu). No root: the package is downloaded and unpacked, not installed.
# Usage: scripts/fetch-dhammapada.sh [out-dir]   (default: data)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/data}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
if ! apt-get download display-dhammapada >/dev/null 2>download.log; then
  cat download.log >&2
  echo "fetch-dhammapada: 'apt-get download display-dhammapada' failed (try 'apt-get update' first)" >&2
  exit 1
fi
dpkg-deb -x ./*.deb pkg
src=pkg/usr/share/display-dhammapada/dhammapada-alternate.txt

# The text starts after the second rule line ("-----"); a chapter starts with "N. Title"; a verse is a
# paragraph ending in its number (or two, "58, 59"); lines before the first chapter (the title) are dropped.
awk '
  /^-----/ { rules++; next }
  rules < 2 { next }
  /^[0-9]+\. / { if (verse != "") { print verse; verse = "" } if (chapters++ > 0) print ""; next }
  chapters == 0 { next }
  /^[[:space:]]*$/ { if (verse != "") { print verse; verse = "" } next }
  { line = $0; gsub(/[[:space:]]+/, " ", line); sub(/^ /, "", line); sub(/ $/, "", line);
    verse = (verse == "" ? line : verse " " line) }
  END { if (verse != "") print verse }
' "$src" | sed -E 's/ [0-9]+(, [0-9]+)*$//' >dhammapada.txt

verses="$(grep -c . dhammapada.txt || true)"
if [ "$verses" -lt 400 ]; then
  echo "fetch-dhammapada: expected about 423 verses, got $verses" >&2
  exit 1
fi
iconv -f UTF-8 -t UTF-8 dhammapada.txt >/dev/null
cp dhammapada.txt "$out/dhammapada.txt"
cp pkg/usr/share/doc/display-dhammapada/copyright "$out/dhammapada.COPYRIGHT"
echo "fetch-dhammapada: $verses verses, $(wc -c <"$out/dhammapada.txt") bytes -> $out/dhammapada.txt"
