#!/usr/bin/env bash
# The generalisation figure: the default's preset (cpu-256) trained with two pose families and a
# range of camera yaws held out, then scored by maskel eval on seen and held-out samples apart.
#
#   bash maskel/configs/train_generalisation.sh DEFAULT_OUT [OUT]     (default OUT: runs/generalisation)
#
# DEFAULT_OUT is a finished (or at least rendered) train_default.sh run: its data-a and heldout sets
# are reused. Held out: the sitting and arms_crossed families, and yaw 150..210 degrees (the back
# views; a range symmetric about 180 stays unseen under mirror augmentation, which maps yaw to
# 360 - yaw). STAGE1_STEPS / STAGE2_STEPS shorten the preset's steps; the figure compares seen and
# held-out samples of the same model, so it does not need the default's budget. Resumable like
# train_default.sh.
set -euo pipefail
DEFAULT_OUT=${1:?usage: train_generalisation.sh DEFAULT_OUT [OUT]}
OUT=${2:-runs/generalisation}
export OMP_NUM_THREADS=${THREADS:-1}
HOLD=(--hold-out-poses sitting,arms_crossed --hold-out-yaw 150:210)

source "$(dirname "$0")/resumable_train.sh"

train "$OUT/s1" stage1 --config cpu-256 --data "$DEFAULT_OUT/data-a" "${HOLD[@]}" ${STAGE1_STEPS:+--steps "$STAGE1_STEPS"}
train "$OUT/s2" stage2 --config cpu-256 --data "$DEFAULT_OUT/data-a" --stage1 "$OUT/s1/best.safetensors" "${HOLD[@]}" \
  ${STAGE2_STEPS:+--steps "$STAGE2_STEPS"}
python -m maskel.evaluate --checkpoint "$OUT/s2/best.safetensors" --name generalisation --data "$DEFAULT_OUT/heldout" --out "$OUT/eval"
