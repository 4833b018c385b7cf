#!/usr/bin/env bash
# Issue 12's measurements at the scale a shared 2-core CPU allows (resumable: finished steps are
# skipped). Arms of the small-data ablation, same steps and batch for stage 1 and stage 2:
#   A: N real pairs;  B: N real pairs, stage 1 also on DDPM samples drawn from a DDPM trained on
#   those N;  C: 10 N real pairs. Then the SR models (×4 to 128² for C's 32² generator, ×2 to 256²),
#   stage1_recon.py and sr_table.py. RESULTS.md ran these steps in this order (the ×4 by hand, the
#   ×2 oracle rows through sr_table.oracle) on the loaded 2-core CPU.
# Usage: bash benchmarks/diffusion/ablation.sh WORK N_DIR N10_DIR SR_DIR HELDOUT (results: RESULTS.md)
# (each *_DIR a dataset folder; WORK gets runs/, aug/, eval/)
set -euo pipefail
W=$1 N=$2 N10=$3 SRDATA=$4 HELD=$5
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=$HERE/abl-32.toml
S1=${S1_STEPS:-300} S2=${S2_STEPS:-300} NAUG=${N_AUG:-160} LIMIT=${EVAL_LIMIT:-32}
mkdir -p "$W"
t() { local name=$1; shift; [ -e "$W/done.$name" ] && return 0; local t0=$(date +%s); "$@"; echo "$name $(( $(date +%s) - t0 )) s" >> "$W/times.txt"; touch "$W/done.$name"; }
tr() { python -m maskel.train "$@"; }
arm() {  # arm NAME DATA [--augmented DIR]
  local name=$1 data=$2; shift 2
  t "s1$name" tr stage1 --config "$CFG" --data "$data" "$@" --out "$W/$name/s1" --steps "$S1"
  t "s2$name" tr stage2 --config "$CFG" --data "$data" --out "$W/$name/s2" --stage1 "$W/$name/s1/last.safetensors" --steps "$S2"
}
arm A "$N"
arm C "$N10"
t ddpm tr ddpm --config ddpm-cpu-64 --data "$N" --out "$W/ddpm" --steps "${DDPM_STEPS:-250}" --resolution "${DDPM_RES:-32}"
t augment python -m maskel augment --checkpoint "$W/ddpm/last.safetensors" --n "$NAUG" --out "$W/aug" --batch 8 --steps "${AUG_STEPS:-10}"
arm B "$N" --augmented "$W/aug"
t srx4 tr sr --config sr-x4-256 --resolution "${SR4_RES:-128}" --data "$SRDATA" --out "$W/sr4"  # ×4 from the 32² generator
t srx2 tr sr --config sr-x2-256 --data "$SRDATA" --out "$W/sr2"
t eval python -m maskel eval --checkpoint "$W/A/s2/last.safetensors" --name "A: N real" \
  --checkpoint "$W/B/s2/last.safetensors" --name "B: N real + DDPM aug (stage 1)" \
  --checkpoint "$W/C/s2/last.safetensors" --name "C: 10N real" --data "$HELD" --limit "$LIMIT" --out "$W/eval"
t recon python "$HERE/stage1_recon.py" --heldout "$HELD" --limit "$LIMIT" "A=$W/A/s1/last.safetensors" "B=$W/B/s1/last.safetensors" "C=$W/C/s1/last.safetensors"
t srtable python "$HERE/sr_table.py" --heldout "$HELD" --sr4 "$W/sr4/last.safetensors" --sr2 "$W/sr2/last.safetensors" \
  --gen "$W/C/s2/last.safetensors" --limit "$LIMIT" --out "$W/srtab"
