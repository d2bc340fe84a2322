# Sourced by the benchmark scripts: `bench_assay [path/to/assay]` sets
# $assay to that binary (an absolute path, so that scripts may change
# folder), or builds the release binary and uses it.
bench_assay() {
  assay="${1:-}"
  if [ -z "$assay" ]; then
    cargo build --release --quiet
    assay=target/release/assay
  fi
  assay="$(realpath "$assay")"
}
# `bench_smollm WORK` sets $model to the folder of the built-in SmolLM2
# graph in Assay's cache ($cache, from bench_venv), building it there first
# if it is not (a one-line script run in WORK).
bench_smollm() {
  printf 'let lm = model("smollm2-135m")\nrecord "ok", 1\n' > "$1/provision.assay"
  (cd "$1" && "$assay" run provision.assay --runs-dir runs >/dev/null)
  model=$(ls -d "$cache"/models/smollm2-135m-* | head -1)
}
