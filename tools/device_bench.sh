#!/usr/bin/env bash
# `make bench-gpu` on a lent device machine (docs/gpu-serving.md, "Running it on a lent device"): no
# registry there and 64 MiB carried per call, so the wheels go over in parts on successive warm calls.
#
#   here, once:        bash tools/device_bench.sh fetch     # .whl/: wheels + sdists, onnxruntime-gpu in parts
#
# onnxruntime-gpu's wheel is 255.6 MB (deflate); its files as one xz stream are 204.1 MB, which with the
# 28.9 MB of the rest makes four calls instead of five (measured 2026-12-07; xz -6, 76 s on 2 cores).
#   device, per part:  bash tools/device_bench.sh gather    # carry: [".whl/<one part or the small files>"]
#   device, last:      bash tools/device_bench.sh run [bench args]   # reassemble, install, bench -> $OUT
set -euo pipefail

WHL=.whl
STASH=/tmp/w          # where carried files wait on the device between calls
SITE=/tmp/site        # where they are installed (PYTHONPATH), never over the image's own packages
ORT=onnxruntime-gpu==1.31.1
PART=61m              # each part + the ~2 MB working tree stays under a call's 64 MiB

case "${1:-}" in
fetch)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    mkdir -p "$WHL"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHL" "$ORT" nvidia-nvimgcodec-cu13==0.9.0.20 nvidia-nvjpeg==13.0.4.44
    python3 -m pip download -q --no-deps -d "$WHL" sam2==1.1.0 hydra-core==1.3.8 \
        omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 iopath==0.1.10
    # the wheel's files (what pip --target would unpack), as one xz stream cut into parts
    rm -rf "$WHL/ort" && mkdir "$WHL/ort" && (cd "$WHL/ort" && unzip -q ../onnxruntime_gpu-*.whl)
    tar -C "$WHL/ort" -cf - . | xz -6 -T0 | split -b "$PART" - "$WHL/ort.part."
    rm -rf "$WHL/ort" "$WHL"/onnxruntime_gpu-*.whl
    mkdir -p "$WHL/small" && mv "$WHL"/*.whl "$WHL"/*.tar.gz "$WHL/small/"
    last=$(ls "$WHL"/ort.part.* | tail -1) && mv "$last" "$WHL/small/"  # the short last part rides along
    cat "$WHL"/ort.part.* "$WHL/small/$(basename "$last")" | xz -t  # the parts make one whole stream
    echo "carry, one call each, while the machine stays warm:"
    du -sh "$WHL"/small "$WHL"/ort.part.*
    ;;
gather)
    mkdir -p "$STASH"
    find "$WHL" -type f -exec cp {} "$STASH/" \;
    ls -la "$STASH"
    ;;
run)
    shift
    cd "$STASH"
    mkdir -p "$SITE" && cat ort.part.* | xz -d | tar -x -C "$SITE"  # onnxruntime-gpu, as pip unpacks it
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
