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
