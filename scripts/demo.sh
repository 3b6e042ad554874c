#!/usr/bin/env bash
# Train and evaluate BPR on the bundled MovieLens data set and print the metrics.
# Extra arguments are passed to `recforge run`, e.g. `bash scripts/demo.sh --epochs 5`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
exec recforge run --model BPR --dataset ml-latest-small --epochs 20 --learning_rate 0.005 "$@"
