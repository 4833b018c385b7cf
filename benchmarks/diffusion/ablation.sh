#!/usr/bin/env bash
# Issue 12's small-data ablation, resumable (a finished step leaves WORK/done.<step> and is skipped;
# an interrupted training resumes from its state). Three arms, the same stage-1 and stage-2 steps
# and batch (equal compute for the MaSkel stages; arm B also pays for its DDPM and its samples):
#   A: N real pairs;  B: the same N, stage 1 also on X-rays drawn by a DDPM trained on those N;
#   C: 10 N real pairs.
# Then `maskel eval` of the three stage-2 models and stage1_recon.py of the three stage-1 models on
# the held-out set. Results and the commands that made them: RESULTS.md.
# Usage: bash benchmarks/diffusion/ablation.sh WORK HELDOUT N_DIR -- N10_DIR...
# Knobs (env): CFG (the MaSkel preset, default cpu-256) and SETS (its --set overrides, default
# "abl-128": the cpu-256 recipe at half its pixels, 128² frames and 64² crops, the same share of the
# body per crop, with 1,500 stage-2 steps, EMA and adversarial term from step 750), DDPM_CFG, DDPM_RES,
# DDPM_STEPS, N_AUG (samples drawn), AUG_STEPS (DDIM steps), EVAL_LIMIT (0: the whole held-out set),
# STEPS (run only these steps, e.g. two lanes side by side on one thread each:
# STEPS="s1A s2A s1C s2C" and STEPS="ddpm augment s1B s2B", then all again for eval and recon).
set -euo pipefail
W=$1 HELD=$2 N=$3
shift 3; [ "${1:-}" = "--" ] && shift
N10=("$@")
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=${CFG:-cpu-256}
read -ra SETS <<< "${SETS:-name=abl-128 resolution=128 stage1.crop=64 stage2.crop=64 stage2.steps=1500 stage2.ema_start=750 stage2.loss.adv_warmup=750}"
MODEL=(--config "$CFG"); for s in "${SETS[@]}"; do MODEL+=(--set "$s"); done
DDPM_CFG=${DDPM_CFG:-$HERE/ddpm-abl-64.toml}
NAUG=${N_AUG:-1000} LIMIT=${EVAL_LIMIT:-0}
mkdir -p "$W"
step() {  # step NAME CMD...: run once, time it
  local name=$1; shift
  [ -e "$W/done.$name" ] && return 0
  [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $name "* ]] && return 0
  local t0; t0=$(date +%s)
  "$@"
  echo "$name $(( $(date +%s) - t0 )) s" >> "$W/times.txt"
  touch "$W/done.$name"
}
train() {  # train STAGE OUT ARGS...: resume when a state exists
  local stage=$1 out=$2; shift 2
  local again=(); [ -e "$out/state.safetensors" ] && again=(--resume)
  python -m maskel.train "$stage" --out "$out" "${again[@]}" "$@"
}
arm() {  # arm NAME DATA... [--augmented DIR]
  local name=$1; shift
  local data=() extra=()
  while [ $# -gt 0 ] && [ "$1" != "--augmented" ]; do data+=("$1"); shift; done
  extra=("$@")
  step "s1$name" train stage1 "$W/$name/s1" "${MODEL[@]}" --data "${data[@]}" "${extra[@]}"
  step "s2$name" train stage2 "$W/$name/s2" "${MODEL[@]}" --data "${data[@]}" --stage1 "$W/$name/s1/last.safetensors"
}
arm A "$N"
step ddpm train ddpm "$W/ddpm" --config "$DDPM_CFG" --data "$N" ${DDPM_STEPS:+--steps "$DDPM_STEPS"} ${DDPM_RES:+--resolution "$DDPM_RES"}
step augment python -m maskel augment --checkpoint "$W/ddpm/last.safetensors" --n "$NAUG" --out "$W/aug" --batch 16 ${AUG_STEPS:+--steps "$AUG_STEPS"}
arm B "$N" --augmented "$W/aug"
arm C "${N10[@]}"
limit=(); [ "$LIMIT" != 0 ] && limit=(--limit "$LIMIT")
step eval python -m maskel eval --data "$HELD" --out "$W/eval" "${limit[@]}" \
  --checkpoint "$W/A/s2/best.safetensors" --name "A: N real" \
  --checkpoint "$W/B/s2/best.safetensors" --name "B: N real + DDPM-augmented X-rays (stage 1)" \
  --checkpoint "$W/C/s2/best.safetensors" --name "C: 10 N real"
step recon env PYTHONPATH="$HERE/../..${PYTHONPATH:+:$PYTHONPATH}" python "$HERE/stage1_recon.py" --heldout "$HELD" "${limit[@]}" \
  "A=$W/A/s1/last.safetensors" "B=$W/B/s1/last.safetensors" "C=$W/C/s1/last.safetensors"
