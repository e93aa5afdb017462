#!/usr/bin/env bash
# The CUDA rows of the speed benchmarks, and the CUDA tests, on a GPU machine (RESULTS.md, "CUDA rows").
#
#   bash benchmarks/speed/cuda_rows.sh OUT_DIR
#
# One step at a time, each under its own time limit, each log to OUT_DIR/<step>.txt;
# a failed step does not stop the later ones. Needs the project importable (installed,
# or PYTHONPATH=.) and a CUDA torch; nothing is downloaded (HF_HUB_OFFLINE=1).
set -u
out=${1:-.bench/cuda}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 MALLOC_ARENA_MAX=1
export BIPART_CACHE=${BIPART_CACHE:-$(mktemp -d)}

step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name: $* ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
    timeout "$limit" "$@" >"$out/$name.txt" 2>&1
    local rc=$?
    tail -n 40 "$out/$name.txt"
    echo "== $name exit $rc ($(date -u +%T))"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.is_available())"
step tests 180 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_render.py -k cuda
step segment 300 python3 benchmarks/speed/speed_memory.py --sections segment --device cuda --workdir "$BIPART_CACHE/speed"
step train 120 python3 benchmarks/training/train_speed.py --device cuda --batches 2 --shapes 16 --orders second,first
step adapt 60 python3 benchmarks/speed/adapt_speed.py --device cuda --sizes 8 --steps 10 --repeats 3
step pretrain 60 python3 benchmarks/training/pretrain_speed.py --device cuda --steps 5
step model 120 python3 benchmarks/speed/model_speed.py
