#!/usr/bin/env bash
# (Re)trains barbell's default model, models/barbell-kjv.gguf, and writes its card models/barbell-kjv.md (the
# command, seeds, config, validation loss/perplexity and samples, written by `barbell train` itself).
#
#   npm run train:default                         # fetch the corpus if missing, build, train from scratch
#   npm run train:default -- --max-minutes 30     # extra flags go to `barbell train` (later flags win)
#   npm run train:default -- --resume data/barbell-kjv.run/checkpoint.safetensors   # continue after Ctrl-C
#
# The corpus is the King James Version of the Bible (public domain), from Debian's bible-kjv-text package, via
# scripts/fetch-corpus.sh into the gitignored data/ folder; checkpoints go to data/barbell-kjv.run/ (a new run
# refuses to overwrite them: resume, or `rm -r data/barbell-kjv.run` to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f data/kjv.txt ]; then
  scripts/fetch-corpus.sh
fi
npm run --silent build

if [ "${1:-}" = "--resume" ]; then
  exec node bin/barbell.js train "$@"
fi
exec node bin/barbell.js train data/kjv.txt \
  --out models/barbell-kjv.gguf --run-dir data/barbell-kjv.run \
  --corpus-license "King James Version (1611), public domain (Debian package bible-kjv-text)" \
  --vocab 4096 --hidden 256 --layers 4 --heads 4 --kv-heads 2 --ffn 768 \
  --seq-len 128 --batch 8 --steps 2100 --warmup 100 --lr 3e-3 --seed 1 --data-seed 2 \
  --eval-every 700 --eval-tokens 8192 --sample "And God said" "In the beginning" "The LORD is my shepherd" --log-every 25 \
  "$@"
