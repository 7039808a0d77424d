#!/usr/bin/env bash
# Every GPU check and timing in one go, under 10 minutes, as run on a lent NVIDIA GPU (docs/speed.md, docs/scale.md).
#   bash benchmarks/gpu_session.sh DATA_ROOT OUT_DIR [PHOTOS]
# DATA_ROOT holds MNIST/raw/*.gz and FashionMNIST/raw/*.gz (torchvision's archives); PHOTOS a cat/dog image folder
# (default DATA_ROOT/cats_dogs/train). Each step has a time limit so that one slow step cannot take the others'
# time; the tables print row by row.
set -u
PY=${PYTHON:-python3}
DATA=${1:?DATA_ROOT}
OUT=${2:-logs/gpu}
PHOTOS=${3:-$DATA/cats_dogs/train}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
  date -u
  nvidia-smi -L
  $PY -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
} 2>&1 | tee "$OUT/env.txt"
# 1. the fast path computes what the per-step one does; no host sync in a training step; transfer in bf16
timeout 120 $PY -m pytest tests/e2e/test_gpu.py -p no:cacheprovider --tb=short -rfE -W ignore >"$OUT/gpu_tests.log" 2>&1
grep -E "^(PASSED|FAILED|ERROR)|passed|failed|^E " "$OUT/gpu_tests.log" | head -30
# 2. MNIST side by side at the lesson's batch of 64: (a) lesson loop, (b) tensor loop, (c) app defaults and per-step
timeout 90 $PY benchmarks/speed.py --data-root "$DATA" --tasks mnist --epochs 3 --lesson-epochs 2 \
  --variants app per_step --out "$OUT/speed_mnist.json" 2>&1 | grep "^|" | tee "$OUT/speed_mnist.log"
# 3. time to 98% MNIST and 89% Fashion-MNIST test accuracy with the defaults
timeout 55 $PY benchmarks/time_to_accuracy.py --data-root "$DATA" 2>&1 | grep "^|" | tee "$OUT/tta.log"
# 4. Fashion-MNIST at batch 64: (b) against (c) defaults and per-step
timeout 40 $PY benchmarks/speed.py --data-root "$DATA" --tasks fashion --epochs 3 --lesson-epochs 0 \
  --variants app per_step --out "$OUT/speed_fashion.json" 2>&1 | grep "^|" | tee "$OUT/speed_fashion.log"
# 5. the feature pass in photos/s: the backbone alone, then the pass with nvJPEG decoding and with the CPU reader
timeout 150 $PY benchmarks/gpu_feature_pass.py --photos "$PHOTOS" 2>&1 | grep "^|" | tee "$OUT/feature_pass.log"
# 6. DDP over NCCL where there is more than one GPU: the transfer run, the feature pass shared between processes
if [ "$(nvidia-smi -L | wc -l)" -gt 1 ]; then
  timeout 90 $PY -m lightning_app fit -c catdog_transfer --data.data_dir "$PHOTOS" --trainer.devices 2 \
    --trainer.strategy ddp --trainer.max_epochs 1 --trainer.precision bf16-mixed 2>&1 | tail -4 | tee "$OUT/ddp.log"
fi
