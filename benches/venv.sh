# Sourced by the benchmark scripts: `bench_venv NAME OVERRIDE PACKAGE...`
# sets $cache (Assay's cache folder) and $venv (a private virtual
# environment, OVERRIDE if set, else $cache/NAME-venv) and installs the
# packages there the first time.
bench_venv() {
  local name="$1" override="$2"
  shift 2
  cache="${ASSAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/assay}"
  venv="${override:-$cache/$name-venv}"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$@"
  fi
}
