#!/bin/bash
# How the campaigns in this folder were measured on the H100 host (bash run.sh t1 t2 s1 s2).
# TRITON_ZIP: the nvidia-pytriton 0.7.0 wheel (pip download nvidia-pytriton==0.7.0), or a zip of its
# pytriton/tritonserver and nvidia_pytriton.libs folders; the stub for this Python is copied into
# backends/python. The host Python needs numpy, torch and aiohttp (not the simulator).
# GPU-host measurement: Triton and simlat's own server, measured from outside. Args: which configs.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
T=${TRITON_DIR:-/tmp/tri}
if [ ! -x $T/pytriton/tritonserver/bin/tritonserver ]; then
TRITON_ZIP=${TRITON_ZIP:-tritonserver.zip} TRITON_DIR=$T python3 - <<'PY'
import zipfile, os
z = zipfile.ZipFile(os.environ['TRITON_ZIP'])
for i in z.infolist():
    p = z.extract(i, os.environ['TRITON_DIR']); m = (i.external_attr >> 16) & 0o777
    if m: os.chmod(p, m)
PY
PYV=$(python3 -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
cp $T/pytriton/tritonserver/python_backend_stubs/$PYV/triton_python_backend_stub $T/pytriton/tritonserver/backends/python/
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import sys, torch, numpy, aiohttp; print(sys.version.split()[0], torch.__version__, numpy.__version__, torch.cuda.get_device_name())"
nproc; lscpu | grep "Model name"
TS=$T/pytriton/tritonserver/bin/tritonserver
COMMON="--device cuda --loads 0.2,0.5,0.7,0.85 --repeats 3 --level-s 5 --warmup-s 1 --probe-s 3 --max-probes 8 --max-lag-ms 5"
run() { name=$1; shift; timeout ${BUDGET:-285} python3 -m simlat.cli validate --measure-only $COMMON "$@" --out ${OUT:-.}/$name.npz > ${OUT:-.}/$name.log 2>&1; echo "== $name rc=$?"; tail -40 ${OUT:-.}/$name.log; }
for c in "$@"; do
case $c in
 t1) run triton_mlp_bf16_b32w0 --server triton --tritonserver $TS --model mlp_ranker --variant bf16 --max-batch 32 --max-wait-ms 0 --start-rps 3000 --model-profile calibration/h100-cuda.json:mlp_ranker:bf16 ;;
 t2) run triton_mlp_fp32_b8w2 --server triton --tritonserver $TS --model mlp_ranker --variant fp32 --max-batch 8 --max-wait-ms 2 --start-rps 1500 --model-profile calibration/h100-cuda.json:mlp_ranker:fp32 ;;
 s1) run simlat_mlp_bf16_b32w0 --server simlat --model mlp_ranker --variant bf16 --max-batch 32 --max-wait-ms 0 --start-rps 2500 --model-profile calibration/h100-cuda.json:mlp_ranker:bf16 ;;
 s2) run simlat_mlp_fp32_b8w2 --server simlat --model mlp_ranker --variant fp32 --max-batch 8 --max-wait-ms 2 --start-rps 800 --model-profile calibration/h100-cuda.json:mlp_ranker:fp32 ;;
esac
done
