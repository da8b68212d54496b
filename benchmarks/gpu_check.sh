#!/usr/bin/env bash
# One prepared GPU run from the repository root: every benchmark in GPU mode and the fast
# tests, each step under its own time limit, full logs in $OUT (default ./gpu-out), a
# summary last. On a GPU machine that cannot reach a package index, wheels of what it lacks
# (dask, distributed, zarr, numcodecs, bokeh and their small dependencies, Python 3.12,
# manylinux x86_64, made elsewhere with `pip download`) are installed with --no-deps from
# $WHEELS (default .wheelhouse).
#   usage: bash benchmarks/gpu_check.sh   (SMALL=1: tiny sizes, a dry run on CPU;
#          SKIP="transfer tests": leave steps out; BUDGET=450: seconds for the whole script;
#          PL="...": pipeline.py arguments; THREADS=4; TESTS="tests"; XDIST=4: pytest -n)
set -u
steps=""
out="${OUT:-gpu-out}"; mkdir -p "$out"
wheels="${WHEELS:-.wheelhouse}"
step() {  # step NAME SECONDS COMMAND...   (skipped when NAME is in $SKIP)
  local name=$1 secs=$2; shift 2
  case " ${SKIP:-} " in *" $name "*) return ;; esac
  local t0=$SECONDS
  echo "== $name (limit ${secs}s)"
  timeout -k 5 "$secs" "$@" >"$out/$name.log" 2>&1; local rc=$?
  echo "   rc=$rc in $((SECONDS - t0))s"
  steps="$steps$name rc=$rc $((SECONDS - t0))s"$'\n'
}
if ls "$wheels"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-deps --no-compile --target /tmp/pk "$wheels"/*.whl >/tmp/install.log 2>&1 \
    || { echo "wheel install failed:"; tail -n 20 /tmp/install.log; }
  export PYTHONPATH=/tmp/pk:$PWD
else
  export PYTHONPATH=$PWD
fi
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
if [ "${SMALL:-0}" = 1 ]; then
  f256="--size 64 --positions 64 --repeats 2"; f128="--size 32 --positions 128 --repeats 2"
  tr="--size 32 --block-size 64 --repeats 2"; mem="--size 32 --block-size 64 --repeats 2"
  pl="--size 32 --positions 900 --block-size 128 --steady 400"
  nz="--size 64 --block 64 --rounds 2 --steady 64,256 --clusters ,1x4"
  tests="tests/core/test_sharding.py"
else
  f256="--size 256 --positions 8192 --repeats 5"; f128="--size 128 --positions 32768 --repeats 5"
  tr="--size 256 --block-size 2048 --repeats 5"; mem="--size 256 --block-size 2048 --repeats 5"
  pl="--size 256 --positions 40000 --block-size 2048 --steady 10000"
  nz="--size 256 --block 2048 --rounds 5 --steady 8192,32768 --clusters ${CLUSTERS:-,1x8,4x4}"
  tests="tests"
fi
tests="${TESTS:-$tests}"
pl="${PL:-$pl}"  # e.g. PL="--size 256 --positions 20000 --block-size 2048 --steady 5000"
step machine 40 bash -c 'date -u; nvidia-smi; nproc; free -g; python3 -c "import jax, numpy, zarr, numcodecs, dask, distributed, xarray; print(\"jax\", jax.__version__, jax.devices(), \"numpy\", numpy.__version__, \"zarr\", zarr.__version__, \"numcodecs\", numcodecs.__version__, \"dask\", dask.__version__, \"distributed\", distributed.__version__, \"xarray\", xarray.__version__)"; python3 -c "import janssen" 2>&1 | tail -1; python3 -c "import cupy, torch; print(\"cupy\", cupy.__version__, \"torch\", torch.__version__)"'
step forward-256 70 python3 benchmarks/forward.py $f256
step forward-128 60 python3 benchmarks/forward.py $f128
step transfer 70 python3 benchmarks/transfer.py $tr
step memory 60 bash -c "python3 benchmarks/transfer.py $mem --chunk 256 && python3 benchmarks/transfer.py $mem --natural --memory-only && python3 benchmarks/transfer.py $mem --natural --chunk 256"
step noise 240 python3 benchmarks/noise.py $nz
step pipeline 150 python3 benchmarks/pipeline.py $pl --threads ${THREADS:-4} --forward-chunk 2048 --no-rss --gpu-memory
extra=""
python3 -c "import xdist" 2>/dev/null && extra="$extra -n ${XDIST:-4}"
python3 -c "import pytest_benchmark" 2>/dev/null && extra="$extra -p no:benchmark"
python3 -c "import pytest_timeout" 2>/dev/null && extra="$extra --timeout 120"
# the tests get what is left of BUDGET seconds (default 450) for the whole script
step tests "$(( ${BUDGET:-450} - SECONDS > 30 ? ${BUDGET:-450} - SECONDS : 30 ))" python3 -m pytest -q -m "not slow" -p no:cacheprovider --maxfail=10 \
  -rfE --durations=10 $extra $tests
{
  echo "================ SUMMARY"
  printf "%s" "$steps"
  grep -E "^(jax|cupy|ModuleNotFound)|H200|H100" "$out/machine.log" | head -5
  for f in forward-256 forward-128; do [ -f "$out/$f.log" ] || continue; echo "-- $f"; grep -E "^(machine|size|\||\(janssen)" "$out/$f.log"; done
  for f in noise; do [ -f "$out/$f.log" ] && { echo "-- $f"; grep -E "^(machine|block|\||jscan)" "$out/$f.log"; }; done
  for f in transfer memory; do
    [ -f "$out/$f.log" ] && { echo "-- $f"; grep -E "^(\(|\||    )" "$out/$f.log"; }
  done
  echo "-- pipeline"; grep -E "^(\(|\||end to end|device->host|steady|raw Zarr|[0-9]+ positions)" "$out/pipeline.log"
  echo "-- tests"; grep -E "passed|failed|error|FAILED|ERROR" "$out/tests.log" | tail -15
  for f in forward-256 forward-128 noise transfer memory pipeline; do
    [ -f "$out/$f.log" ] && grep -q Traceback "$out/$f.log" && { echo "-- $f traceback"; tail -n 8 "$out/$f.log"; }
  done
} | tee "$out/summary.txt"
