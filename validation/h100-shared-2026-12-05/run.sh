#!/bin/bash
# How the files in this folder were measured on one H100 host (bash run.sh, from the repository root).
# TRITON_TAR: a tar.xz of nvidia-pytriton 0.7.0's pytriton/tritonserver and nvidia_pytriton.libs folders
# (pip download nvidia-pytriton==0.7.0; unzip), with the Python-backend stub of the host's Python.
# The host Python needs numpy, torch, aiohttp, msgpack, typer and rich (not the simulator's pydantic/simpy).
# Steps (each bounded by `timeout`, so a failing step leaves the others' files):
#   1. contention between model instances on the GPU (simlat calibrate --contention)
#   2. Triton with 2 and 4 instances of mlp_ranker bf16 on the one GPU, open-loop levels (validate --instances)
#   3. a real Triton replica's cold start per variant (validate --cold-start)
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUT=${OUT:-.}
LOGS=${LOGS:-$OUT/logs}; mkdir -p $LOGS
T=${TRITON_DIR:-/tmp/tri}
if [ ! -x $T/pytriton/tritonserver/bin/tritonserver ]; then
  mkdir -p $T && tar xJf ${TRITON_TAR:-.whl/tritonserver.tar.xz} -C $T
  PYV=$(python3 -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  cp $T/pytriton/tritonserver/python_backend_stubs/$PYV/triton_python_backend_stub $T/pytriton/tritonserver/backends/python/
fi
TS=$T/pytriton/tritonserver/bin/tritonserver
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import sys, torch, numpy, aiohttp; print(sys.version.split()[0], torch.__version__, numpy.__version__, torch.cuda.get_device_name())"
  nproc; lscpu | grep "Model name"; } > $LOGS/machine.txt 2>&1
cat $LOGS/machine.txt
left() { echo $(( ${TOTAL_S:-570} - SECONDS )); }
step() { name=$1; budget=$2; shift 2
  b=$(left); [ $b -gt $budget ] && b=$budget
  if [ $b -lt 30 ]; then echo "== $name skipped: ${b}s left"; return; fi
  echo "== $name (budget ${b}s, t=${SECONDS}s)"
  timeout $b "$@" > $LOGS/$name.log 2>&1; echo "== $name rc=$? t=${SECONDS}s"; tail -25 $LOGS/$name.log; }
CONTENTION=${CONTENTION_CMD:-}
[ -n "$CONTENTION" ] && step contention 200 bash -c "$CONTENTION"
SHARED="--server triton --tritonserver $TS --model mlp_ranker --variant bf16 --device cuda --max-batch 32 --max-wait-ms 0
 --loads 0.3,0.6,0.85 --repeats 2 --level-s 4 --warmup-s 1 --probe-s 2.5 --max-probes 7 --max-lag-ms 5
 --model-profile calibration/h100-cuda.json:mlp_ranker:bf16 --measure-only"
step triton_i2 150 python3 -m simlat.cli validate $SHARED --instances 2 --start-rps 6000 --out $OUT/triton_mlp_bf16_b32w0_i2.npz
step triton_i4 150 python3 -m simlat.cli validate $SHARED --instances 4 --start-rps 6000 --out $OUT/triton_mlp_bf16_b32w0_i4.npz
step coldstart 120 python3 -m simlat.cli validate --server triton --tritonserver $TS --model mlp_ranker --device cuda \
  --max-batch 32 --cold-start bf16,fp32,compile --repeats 2 --first 1000 --cold-rate 500 --out $OUT/h100-coldstart.json
ls -la $OUT $LOGS
