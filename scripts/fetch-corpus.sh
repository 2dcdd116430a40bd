#!/usr/bin/env bash
# Fetches the training corpus: the King James Version of the Bible (public domain) from Debian's
# bible-kjv-text package, read with the package's own `bible` program (bible-kjv), normalized to UTF-8 text,
# one verse per line, a blank line between chapters. Writes data/kjv.txt (gitignored) and prints the Debian
# copyright file and the corpus size. Run by hand before training (docs/training.md); barbell never downloads
# anything at run time.
#
# Needs apt-get and dpkg-deb (Debian/Ubuntu). No root: the packages are downloaded and unpacked, not installed.
# Usage: scripts/fetch-corpus.sh [out-dir]   (default: data)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/data}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
if ! apt-get download bible-kjv-text bible-kjv >/dev/null 2>download.log; then
  cat download.log >&2
  echo "fetch-corpus: 'apt-get download bible-kjv-text bible-kjv' failed (try 'apt-get update' first)" >&2
  exit 1
fi
for deb in ./*.deb; do
  dpkg-deb -x "$deb" pkg
done

# All 66 books in order; -f turns pretty-printing off: one "Ge1:1 In the beginning..." line per verse.
./pkg/usr/bin/bible -f -p pkg/usr/lib "gen1:1-rev22:21" >raw.txt
verses="$(wc -l <raw.txt)"
if [ "$verses" -ne 31102 ]; then
  echo "fetch-corpus: expected 31102 verses, got $verses" >&2
  exit 1
fi

# Drop the "Ge1:1 " reference, put a blank line between chapters, check the result is valid UTF-8.
awk '{
  ref = $1; sub(/:[0-9]+$/, "", ref);
  if (NR > 1 && ref != last) print "";
  last = ref;
  sub(/^[^ ]+ /, "");
  print
}' raw.txt >kjv.txt
iconv -f UTF-8 -t UTF-8 kjv.txt >/dev/null
mv kjv.txt "$out/kjv.txt"
cp pkg/usr/share/doc/bible-kjv-text/copyright "$out/kjv.COPYRIGHT"

echo "== license (Debian copyright file of bible-kjv-text $(dpkg-deb -f ./bible-kjv-text_*.deb Version)) =="
cat "$out/kjv.COPYRIGHT"
echo "== corpus =="
echo "$out/kjv.txt: $(wc -c <"$out/kjv.txt") bytes, $verses verses, $(wc -w <"$out/kjv.txt") words"
sha256sum "$out/kjv.txt"
