#!/usr/bin/env bash
# CUDA figures in one pass (for a lent GPU machine; its python3 holds a CUDA torch):
#   OUT=results_dir bash bench/cuda.sh
# Runs the CUDA tests, the operator benchmark (all ops, then the Fourier unit's paths over more
# lengths to place the dense/fft crossover) and the inference benchmark on the GPU.
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$OUT/gpu.txt"
timeout 120 python3 -m pytest -q -p no:cacheprovider --noconftest tests/ops/test_ops_cuda.py 2>&1 | tail -15 | tee "$OUT/cuda_tests.txt"
timeout 200 python3 bench/ops.py --device cuda --repeats 20 --json "$OUT/ops_cuda.json" 2>/dev/null | tee "$OUT/ops_cuda.txt"
timeout 100 python3 bench/ops.py --device cuda --ops fourier --repeats 20 --lengths 12 29 48 64 96 192 384 \
    --json "$OUT/ops_cuda_fourier.json" 2>/dev/null | tail -14 | tee "$OUT/ops_cuda_fourier.txt"
timeout 60 python3 bench/inference.py --device cuda --batch 262144 --repeats 10 2>&1 | tee "$OUT/inference_cuda.txt"
