#!/usr/bin/env bash
# The shipped default model (preset cpu-256), end to end on a 2-core CPU: data, stage 1, stage 2, eval.
#
#   bash maskel/configs/train_default.sh [OUT]        (default OUT: runs/default)
#
# Every step is resumable: after an interruption, run the same command again. Finished dataset
# samples are kept, and a training stage whose state exists continues from it (--resume).
# THREADS (default 1) sets the torch threads per training process; on a busy 2-core machine one
# thread beats two. Then copy OUT/s2/best.safetensors (+ .json) to maskel/weights/default.*.
set -euo pipefail
OUT=${1:-runs/default}
export OMP_NUM_THREADS=${THREADS:-1}
export ANNY_CACHE_DIR=${ANNY_CACHE_DIR:-$HOME/.cache/maskel/anny}

# Training data: two sets of 4,000 phantom samples at 256² (new bodies every 4 samples, new poses
# every 2, a new camera each); the held-out set uses a seed never used for training. The shipped
# default was trained on phantom version 2 (myo-sim skeleton, no subcutaneous fat layer): FAT=on
# makes version 3 data for the next retrain.
FAT=${FAT:-off}
python -m render.dataset --n 4000 --size 256 --out "$OUT/data-a" --seed 7301 --workers 2 --fat "$FAT"
python -m render.dataset --n 4000 --size 256 --out "$OUT/data-b" --seed 7302 --workers 2 --fat "$FAT"
python -m render.dataset --n 240 --size 256 --out "$OUT/heldout" --seed 9090 --workers 2 --fat "$FAT"

source "$(dirname "$0")/resumable_train.sh"

train "$OUT/s1" stage1 --config cpu-256 --data "$OUT/data-a"
train "$OUT/s2" stage2 --config cpu-256 --data "$OUT/data-a" "$OUT/data-b" --stage1 "$OUT/s1/best.safetensors"
python -m maskel.evaluate --checkpoint "$OUT/s2/best.safetensors" --name cpu-256 --data "$OUT/heldout" --out "$OUT/eval"
