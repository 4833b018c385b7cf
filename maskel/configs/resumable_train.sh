# Sourced by the training recipes: train DIR ARGS... starts `python -m maskel.train ARGS --out DIR`,
# or resumes it when DIR already has a training state.
train() {
  local dir=$1
  shift
  if [ -f "$dir/state.json" ]; then
    python -m maskel.train "$@" --out "$dir" --resume
  else
    python -m maskel.train "$@" --out "$dir"
  fi
}
