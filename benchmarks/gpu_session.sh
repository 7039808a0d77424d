#!/usr/bin/env bash
# The GPU checks and timings of the speed issue in one go, as run on a lent NVIDIA H100/H200 (see README, Speed).
#   bash benchmarks/gpu_session.sh DATA_ROOT OUT_DIR
# DATA_ROOT holds MNIST/raw/*.gz and FashionMNIST/raw/*.gz (torchvision's archives).
set -u
PY=${PYTHON:-python3}
DATA=${1:?DATA_ROOT}
OUT=${2:-logs/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
  date -u
  nvidia-smi -L
  $PY -c "import torch, lightning, torchmetrics; print('torch', torch.__version__, 'lightning', lightning.__version__, \
'torchmetrics', torchmetrics.__version__, torch.cuda.get_device_name(0))"
  nproc
} 2>&1 | tee "$OUT/env.txt"
# 1. the fast paths compute the same thing; no host sync in a training step; transfer on the GPU
timeout 150 $PY -m pytest tests/test_gpu.py -p no:cacheprovider -rA -W ignore 2>&1 | tail -40 | tee "$OUT/gpu_tests.log"
# 2. side by side at the lesson's batch of 64: (a) lesson loop, (b) tensor loop, (c) app: default, on_device, fast
timeout 260 $PY benchmarks/speed.py --data-root "$DATA" --tasks mnist fashion --epochs 3 --lesson-epochs 2 \
  --out "$OUT/speed64.json" 2>&1 | tail -16 | tee "$OUT/speed64.log"
# 3. time to 98% MNIST and 89% Fashion-MNIST with the fast path
timeout 120 $PY benchmarks/time_to_accuracy.py --data-root "$DATA" --fast 2>&1 | tail -6 | tee "$OUT/tta.log"
# 4. batch 512: (b) against the fast path
timeout 90 $PY benchmarks/speed.py --data-root "$DATA" --tasks mnist --epochs 4 --lesson-epochs 0 --batch-size 512 \
  --variants app fast --out "$OUT/speed512.json" 2>&1 | tail -8 | tee "$OUT/speed512.log"
# 5. where a step's time goes (Lightning's SimpleProfiler, one MNIST epoch): default path, then the fast path
mkdir -p /tmp/prof && cp -r "$DATA/MNIST" /tmp/prof/ 2>/dev/null
for extra in "" "--data.on_device true --model.cuda_graph true"; do
  echo "== fit $extra"
  (cd /tmp/prof && timeout 45 $PY -m lightning_app fit --data.data_dir /tmp/prof --trainer.max_epochs 2 \
    --trainer.profiler simple --trainer.enable_progress_bar false $extra 2>&1 | grep -E "^\|" | head -24 | cut -c1-60,160-)
done 2>&1 | tee "$OUT/profile.log"
