#!/usr/bin/env bash
# trainer=gpu on a real GPU in one call of under 8 minutes (issue 11, point 6; docs/gpu_check.md).
#
#   scripts/gpu_check.sh prepare        on a networked machine: the pure-Python wheels the GPU machine
#                                       lacks (Hydra & co., pytest, hatchling, pip) -> scripts/gpu_wheels/
#   scripts/gpu_check.sh run [OUTDIR]   on the GPU machine, offline: a venv over the system's CUDA torch,
#                                       the wheels, the project; then the CUDA tests, a 2,000-step run,
#                                       the benchmark's GPU rows, nvidia-smi; all numbers in
#                                       OUTDIR/gpu_check.json (+ .md). OUTDIR: $OUT, else outputs/gpu_check.
#
# Environment: PYTHON (the base interpreter: default the first of python3, python that imports torch),
# GPU_CHECK_BUDGET_S (450: the steps' total time box), GPU_CHECK_STEPS (2000), GPU_CHECK_VENV,
# GPU_CHECK_DRY_RUN=1 (without CUDA, run the training step on trainer=cpu anyway: tests this script).
# Exit code: 0 all checks passed, 1 a check failed, 2 no CUDA (nothing could be checked); the report is
# written in every case.

# No `set -e`: every step records its own result and the next step runs whatever happened before.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
WHEELS="${GPU_CHECK_WHEELS:-$HERE/gpu_wheels}"

# Everything the GPU machine lacks that is pure Python: pyproject's Hydra dependencies and theirs,
# pytest (the dev extra) and its own, hatchling (the build backend, for the editable install) and its
# own (the simulation in docs/gpu_check.md found tomlkit and editables missing otherwise), and pip
# itself (for a Python whose venv module has no ensurepip). Not tomli or exceptiongroup: pytest needs
# them only below Python 3.11, which the project does not support (and tomli's newest wheels are
# compiled). Never torch, lightning, tensorboard or matplotlib: the machine's own. PyYAML (omegaconf's,
# compiled) is Lightning's dependency too, so the machine has it.
PURE=(
    "hydra-core>=1.3,<1.4" "omegaconf>=2.2,<2.4" "hydra-joblib-launcher>=1.2" "hydra-submitit-launcher>=1.2"
    "joblib>=0.14" "submitit>=1.3.3" "cloudpickle"
    "pytest>=8" "iniconfig" "pluggy" "packaging" "pygments"
    "hatchling>=1.21" "pathspec" "trove-classifiers" "tomlkit"
    "editables"  # hatchling's editable build asks for it (a build requirement, not a dependency)
    "pip"
)
ANTLR="antlr4-python3-runtime==4.9.*"  # omegaconf 2.3 pins 4.9.*, published only as an sdist

prepare() {
    local py="${PYTHON:-}"
    [[ -n "$py" ]] || { [[ -x "$REPO/.venv/bin/python" ]] && py="$REPO/.venv/bin/python" || py=python3; }
    mkdir -p "$WHEELS" && rm -f "$WHEELS"/*.whl "$WHEELS/SHA256SUMS" || return 1
    echo "== pip download into $WHEELS ($py)"
    "$py" -m pip download --no-deps --only-binary=:all: -d "$WHEELS" "${PURE[@]}" || return 1
    # a wheel if the index has one, else build it from the sdist (pip wheel, pure Python, no compiler)
    "$py" -m pip download --no-deps --only-binary=:all: -d "$WHEELS" "$ANTLR" 2>/dev/null \
        || "$py" -m pip wheel --no-deps -w "$WHEELS" "$ANTLR" || return 1
    local bad
    bad="$(cd "$WHEELS" && ls | grep -v -- '-none-any\.whl$' || true)"
    if [[ -n "$bad" ]]; then
        echo "not a pure-Python wheel (the GPU machine's Python may differ from this one): $bad" >&2
        return 1
    fi
    (cd "$WHEELS" && sha256sum ./*.whl > SHA256SUMS)
    ls -1 "$WHEELS"
    echo "== $(du -sh "$WHEELS" | cut -f1) in $WHEELS: carry it to the GPU machine (it is git-ignored)"
}

# ------------------------------------------------------------------------------------------ run

STEPS_TSV=""
DEADLINE=0
REPORT_RESERVE_S=20  # kept back from the budget for the report itself

record() {  # name rc seconds timeout_s note
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$STEPS_TSV"
}

# step NAME CAP_S CMD...: run CMD with its output in logs/NAME.log, time-boxed by the smaller of CAP_S
# and what is left of the budget; SIGTERM first (the training run saves and writes its summary on it),
# SIGKILL 10 s later. timeout signals the command's whole process group, children included.
step() {
    local name="$1" cap="$2"; shift 2
    local left=$((DEADLINE - SECONDS - REPORT_RESERVE_S))
    local limit=$((cap < left ? cap : left))
    if ((limit < 5)); then
        record "$name" "" 0 "$limit" "not run: the time budget was spent"
        echo "== $name: not run (budget spent)"
        return 1
    fi
    echo "== $name (time box ${limit} s)"
    local t0=$SECONDS rc
    timeout -k 10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
    rc=$?
    record "$name" "$rc" $((SECONDS - t0)) "$limit" ""
    echo "   rc=$rc in $((SECONDS - t0)) s"
    tail -n 3 "$LOGS/$name.log" | sed 's/^/   | /'
    return "$rc"
}

find_base_python() {  # the interpreter with the machine's torch (and Lightning)
    local c
    for c in ${PYTHON:-} python3 python; do
        if command -v "$c" > /dev/null && "$c" -c "import torch, lightning" 2> /dev/null; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

pip_offline() {  # pip from the wheels folder only: no index, no network
    "$VPY" -m pip --disable-pip-version-check --no-input "$@" --no-index --find-links "$WHEELS"
}

# Runs in a bash of its own (under `timeout`): what the caller needs comes back in files
# ($VENV itself, $LOGS/install_mode).
setup_env() {
    if [[ -f "$WHEELS/SHA256SUMS" ]]; then
        (cd "$WHEELS" && sha256sum --quiet -c SHA256SUMS) || { echo "wheels damaged in transit"; return 1; }
    else
        echo "no $WHEELS/SHA256SUMS: run 'scripts/gpu_check.sh prepare' and carry scripts/gpu_wheels"; return 1
    fi
    rm -rf "$VENV"
    # --system-site-packages: the machine's CUDA torch, Lightning, TensorBoard and matplotlib are used as
    # they are; nothing below ever installs torch, so it cannot be replaced. --without-pip as a fallback
    # for a Python without ensurepip (Debian's without python3-venv): the system's pip, or the carried
    # pip wheel run from itself, then installs into the venv.
    "$BASE" -m venv --system-site-packages "$VENV" \
        || { rm -rf "$VENV" && "$BASE" -m venv --without-pip --system-site-packages "$VENV"; } || return 1
    VPY="$VENV/bin/python"
    if ! "$VPY" -m pip --version > /dev/null 2>&1; then
        local pipwheel
        pipwheel="$(ls "$WHEELS"/pip-*.whl | head -n 1)"
        "$VPY" "$pipwheel/pip" install --no-index --find-links "$WHEELS" pip || return 1
    fi
    "$VPY" -m pip --version
    # Dependencies resolve against the system's packages first; only what is missing (or too old)
    # comes from the wheels, into the venv.
    pip_offline install hydra-core hydra-joblib-launcher hydra-submitit-launcher pytest hatchling editables || return 1
    # The project: editable, so the code under test is this checkout's, with no dependencies (pyproject
    # pins torch==2.13.* for the CPU machines; the GPU machine has its own CUDA build) and no build
    # isolation (an isolated build would fetch hatchling from an index). If that fails (an old pip
    # without PEP 660, say) src/ goes on PYTHONPATH instead: the same code, and config_dir() finds conf/
    # in the checkout either way. The mode used is in the report.
    if pip_offline install --no-deps --no-build-isolation -e "$REPO"; then
        echo editable > "$LOGS/install_mode"
    else
        echo "editable install failed: falling back to PYTHONPATH=$REPO/src"
        echo pythonpath > "$LOGS/install_mode"
    fi
    [[ "$(cat "$LOGS/install_mode")" == editable ]] || export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
    "$VPY" -m pip list 2> /dev/null > "$LOGS/pip_list.txt"
    "$VPY" -c "import hydra, rnn_gradients, torch; print('rnn_gradients from', rnn_gradients.__file__, '| torch', torch.__version__, torch.__file__)"
}

run_check() {
    OUTDIR="${1:-${OUT:-$REPO/outputs/gpu_check}}"
    mkdir -p "$OUTDIR" && OUTDIR="$(cd "$OUTDIR" && pwd)" || exit 1
    LOGS="$OUTDIR/logs"
    rm -rf "$LOGS" "$OUTDIR/train" "$OUTDIR/bench" "$OUTDIR/gpu_check.json" "$OUTDIR/gpu_check.md"
    mkdir -p "$LOGS"
    STEPS_TSV="$LOGS/steps.tsv"
    : > "$STEPS_TSV"
    local budget="${GPU_CHECK_BUDGET_S:-450}" steps="${GPU_CHECK_STEPS:-2000}"
    DEADLINE=$((SECONDS + budget))
    VENV="${GPU_CHECK_VENV:-${TMPDIR:-/tmp}/rnn-gradients-gpu-venv}"
    # This machine's pip settings (extra indexes, find-links, constraints) must not leak in: on the GPU
    # machine there are none, and the simulation elsewhere must see what it sees.
    local v
    for v in $(env | sed -n 's/^\(PIP_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
    export PIP_CONFIG_FILE=/dev/null PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1
    cd "$REPO" || exit 1

    BASE="$(find_base_python)" || BASE=""
    if [[ -z "$BASE" ]]; then
        record setup 1 0 0 "no Python with torch and lightning found (set PYTHON=...)"
        echo "no Python with torch and lightning found (set PYTHON=...)" > "$LOGS/setup.log"
        VPY="${PYTHON:-python3}"
    else
        echo "== base Python: $BASE"
        "$BASE" -c "import torch; print(torch.__version__)" > "$LOGS/base_torch.txt" 2>&1
        export WHEELS VENV BASE LOGS REPO
        export -f setup_env pip_offline
        step setup 150 bash -c setup_env
        [[ -x "$VENV/bin/python" ]] && VPY="$VENV/bin/python" || VPY="$BASE"
        if [[ "$(cat "$LOGS/install_mode" 2> /dev/null)" != editable ]]; then
            export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
        fi
    fi

    step env 60 "$VPY" "$HERE/gpu_check_report.py" env --out "$LOGS/env.json"
    if command -v nvidia-smi > /dev/null; then
        step nvidia_smi 30 bash -c 'nvidia-smi; echo "--- query"; nvidia-smi --format=csv \
            --query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,power.limit,compute_cap'
    else
        record nvidia_smi 127 0 0 "nvidia-smi not found"
    fi
    local cuda
    cuda="$("$VPY" -c "import torch; print(int(torch.cuda.is_available()))" 2> /dev/null || echo 0)"
    echo "== CUDA available: $cuda"

    step pytest 150 "$VPY" -m pytest -m gpu tests/test_gpu.py -rs -p no:cacheprovider --junitxml="$LOGS/pytest.xml"

    local trainer=gpu
    if [[ "$cuda" != 1 && "${GPU_CHECK_DRY_RUN:-0}" == 1 ]]; then
        trainer=cpu  # tests this script without a GPU; the report says which trainer ran
    fi
    echo "$trainer $steps" > "$LOGS/train_settings"
    if [[ "$cuda" == 1 || "$trainer" == cpu ]]; then
        step train 200 "$VPY" -m rnn_gradients.train "trainer=$trainer" model=lstm data=adding \
            "trainer.max_steps=$steps" trainer.enable_progress_bar=false "hydra.run.dir=$OUTDIR/train"
    else
        record train "" 0 0 "not run: no CUDA (torch.cuda.is_available() is False)"
    fi
    # without CUDA the GPU rows come back 'skipped' at once: the step still checks the bench runs here
    step bench 150 "$VPY" "$HERE/bench" --only gpu --quick --out "$OUTDIR/bench"

    echo "== report"
    # stdlib only: any Python writes it, whatever failed before; its exit code is the script's
    "$VPY" "$HERE/gpu_check_report.py" report --outdir "$OUTDIR" --budget "$budget" --elapsed "$SECONDS"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run_check "$@" ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
