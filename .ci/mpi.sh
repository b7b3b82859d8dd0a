#!/usr/bin/env bash
# Multi-rank tests over real MPI (issue #15): installs OpenMPI and libclang (for the
# `mpi` crate's bindings) when missing, builds the MPI example, runs the multi-rank
# checks with 1, 2 and 3 ranks, and checks that killing one rank ends the job.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mpirun >/dev/null || ! command -v mpicc >/dev/null || ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
    echo "== installing OpenMPI and libclang (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libopenmpi-dev openmpi-bin libclang-dev >/dev/null
fi
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
echo "== cargo build -p solvers --features mpi --example mpi_ranks"
cargo build -p solvers --features mpi --example mpi_ranks
bin=target/debug/examples/mpi_ranks
for np in 1 2 3; do
    echo "== mpirun -np $np mpi_ranks check"
    "${MPIRUN[@]}" -np "$np" "$bin" check
done
echo "== cargo build -p bench-suite --features mpi (the distributed strata-compare)"
cargo build -p bench-suite --features mpi --bin strata-compare
echo "== cargo clippy -p solvers -p bench-suite --features mpi --all-targets -- -D warnings"
cargo clippy -p solvers -p bench-suite --features mpi --all-targets -- -D warnings
out=$(mktemp -d)
compare=(target/debug/strata-compare --problems digits-mlp,nmf-spectrogram-kl --solvers admm-taylor,dladmm,adam,lbfgs,nmf-mm --epochs 5 --time-budget 0 --seeds 1 --no-progress)
"${compare[@]}" --out "$out/one" >/dev/null
for np in 2 3; do
    echo "== mpirun -np $np strata-compare --distributed (digits-mlp, NMF KL): final objectives vs one process"
    "${MPIRUN[@]}" -np "$np" "${compare[@]}" --distributed --out "$out/np$np" >/dev/null
    python3 - "$out/one" "$out/np$np" "$np" <<'PY'
import glob, json, sys
def load(d):
    r = json.load(open(glob.glob(d + "/compare-*/results.json")[0]))
    return r["metadata"].get("ranks"), {(x["problem"], x["solver"]): x["trace"][-1]["objective"] for x in r["runs"]}
_, one = load(sys.argv[1])
ranks, many = load(sys.argv[2])
assert ranks == int(sys.argv[3]), ranks
bad = 0
for k, v in sorted(one.items()):
    rel = abs(v - many[k]) / abs(v)
    print(f"  {k[0]:22s} {k[1]:12s} {v:.15e} rel {rel:.1e}")
    bad += rel > 1e-9
sys.exit(1 if bad else 0)
PY
done
rm -rf "$out"
echo "== killing one of 2 ranks ends the job"
"${MPIRUN[@]}" -np 2 "$bin" soak 120 >/dev/null 2>&1 &
job=$!
sleep 3
victim=$(pgrep -f "^$bin soak" | head -n 1 || true)
if [ -z "$victim" ]; then
    echo "no rank process found"; kill "$job" 2>/dev/null || true; exit 1
fi
t0=$(date +%s)
kill -9 "$victim"
status=0
for _ in $(seq 1 60); do
    if ! kill -0 "$job" 2>/dev/null; then break; fi
    sleep 0.5
done
if kill -0 "$job" 2>/dev/null; then
    echo "FAIL: mpirun still running 30 s after a rank was killed"; kill -9 "$job" || true; exit 1
fi
wait "$job" || status=$?
echo "mpirun exited with status $status $(( $(date +%s) - t0 )) s after rank $victim was killed"
if [ "$status" -eq 0 ]; then
    echo "FAIL: the job reported success although a rank was killed"; exit 1
fi
echo "MPI: 1 passed, 0 failed"
