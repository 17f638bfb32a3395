#!/usr/bin/env bash
# One GPU machine, one call (<= 600 s): what the H100 -> H200 check needs from each device.
#   1. the GPU and host it ran on (nvidia-smi, lscpu);
#   2. a probe of the machine (CPU rates, serialization components, GPU peaks, launch and round-trip costs), ~15 s;
#   3. a full calibration with the adaptive budget (three built-in models, every cuda variant, two
#      processes a variant), limited to 520 s so that the whole call fits in 10 minutes.
# Usage (repository root, on the GPU host): OUT=/some/dir bash validation/gpu-projection-2026-12-05/run.sh
# Needs torch and numpy; typer for the CLI (pydantic, simpy, pandas are not needed to calibrate).
set -u
OUT=${OUT:?set OUT to an output folder}
mkdir -p "$OUT"
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv;
  lscpu | grep -E "Model name|^CPU\(s\)|MHz"; python3 -c "import torch; print('torch', torch.__version__)"; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
timeout 90 python3 -c "
import json
from simlat.calibrate.probe import run_probe
r = run_probe(16, seconds=6, device='cuda')
open('$OUT/probe.json', 'w').write(json.dumps(r, indent=1) + '\n')
g = r['gpu']
print('probe', r['elapsed_s'], 's:', g['device_name'], {k: round(v / 1e12) for k, v in g['matmul_flops_per_s'].items()},
      round(g['copy_bytes_per_s'] / 1e9), 'GB/s; launch', round(g['launch_us'], 2), 'us; op+sync', round(g['op_sync_us'], 1),
      'us; Linear+sync', round(g['linear_sync_us'], 1), 'us')
" 2>&1 | tail -5
start=$(date +%s)
timeout 570 python3 -m simlat.cli calibrate --device cuda --model builtin --budget adaptive --time-limit "${LIMIT:-520}" \
    --quiet --note "validation/gpu-projection-2026-12-05/run.sh" --out "$OUT/profile.json" > "$OUT/calibrate.log" 2>&1
echo "calibrate rc=$? in $(( $(date +%s) - start )) s"
tail -25 "$OUT/calibrate.log"
