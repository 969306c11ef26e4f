#!/usr/bin/env bash
# `make bench-gpu` on a lent device machine (docs/gpu-serving.md, "Running it on a lent device"): no
# registry there and 64 MiB carried per call, so the wheels go over in parts on successive warm calls.
#
#   here, once:        bash tools/device_bench.sh fetch     # .whl/: wheels + sdists, onnxruntime-gpu in parts
#   device, per part:  bash tools/device_bench.sh gather    # carry: [".whl/<one part or the small files>"]
#   device, last:      bash tools/device_bench.sh run [bench args]   # reassemble, install, bench -> $OUT
set -euo pipefail

WHL=.whl
STASH=/tmp/w          # where carried files wait on the device between calls
SITE=/tmp/site        # where they are installed (PYTHONPATH), never over the image's own packages
ORT=onnxruntime-gpu==1.31.1
PART=61m              # 4 parts; each + the ~2 MB working tree stays under a call's 64 MiB

case "${1:-}" in
fetch)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    mkdir -p "$WHL"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHL" "$ORT" nvidia-nvimgcodec-cu13==0.9.0.20 nvidia-nvjpeg==13.0.4.44
    python3 -m pip download -q --no-deps -d "$WHL" sam2==1.1.0 hydra-core==1.3.8 \
        omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 iopath==0.1.10
    (cd "$WHL" && split -b "$PART" onnxruntime_gpu-*.whl ort.part. && ls onnxruntime_gpu-*.whl > ort.name &&
        rm onnxruntime_gpu-*.whl)
    mkdir -p "$WHL/small" && mv "$WHL"/*.whl "$WHL"/*.tar.gz "$WHL/ort.name" "$WHL/small/"
    echo "carry, one call each, while the machine stays warm:"
    ls -d "$WHL"/small "$WHL"/ort.part.*
    ;;
gather)
    mkdir -p "$STASH"
    find "$WHL" -type f -exec cp {} "$STASH/" \;
    ls -la "$STASH"
    ;;
run)
    shift
    cd "$STASH"
    cat ort.part.* > "$(cat ort.name)"
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" ./*.whl
    SAM2_BUILD_CUDA=0 python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" ./*.tar.gz
    cd - > /dev/null
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 python3 -m tools.bench_gpu --json "${OUT:-build}/bench-gpu.json" "$@"
    ;;
*)
    echo "usage: bash tools/device_bench.sh fetch | gather | run [tools.bench_gpu arguments]" >&2
    exit 2
    ;;
esac
