#!/usr/bin/env bash
# Offline set-up for bench/gpu.py on a machine with python3, torch and torchvision but without this project's other
# dependencies and without internet: installs (--no-index --no-deps, nothing else touched) the pinned wheels in
# bench/out/wheels for the packages that are missing. Make that folder where PyPI is reachable (about 32 MB):
#     bash bench/gpu_setup.sh --download
# then carry it to the GPU machine with the working tree and run
#     bash bench/gpu_setup.sh && python3 bench/gpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=bench/out/wheels
PKGS=(fastai==2.8.7 fastcore==1.14.5 fastdownload==0.0.8 fastprogress==1.0.5 fasttransform==0.0.2 plum-dispatch==2.10.1
      beartype==0.23.1 lpips==0.1.4 openslide-python==1.4.7 openslide-bin==4.0.1.2 defusedxml==0.7.1 imagecodecs==2026.3.6
      tifffile==2026.3.3)
if [ "${1:-}" = "--download" ]; then
  mkdir -p "$WHEELS"
  "$PY" -m pip download -q --no-deps -d "$WHEELS" "${PKGS[@]}"
  for v in 3.11 3.12 3.13; do   # the one compiled wheel without a stable-ABI build, for the usual Pythons
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$v" -d "$WHEELS" plum-dispatch==2.10.1
  done
  du -sh "$WHEELS"; exit 0
fi
[ -d "$WHEELS" ] || { echo "gpu_setup: $WHEELS not found: run 'bash bench/gpu_setup.sh --download' where PyPI is reachable" >&2; exit 1; }
missing=()
for p in "${PKGS[@]}"; do
  name=${p%%==*}
  "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$name" 2>/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "gpu_setup: nothing to install"; exit 0; fi
echo "gpu_setup: installing ${missing[*]}"
"$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" "${missing[@]}"
"$PY" -c "import fastai, fastcore, fastprogress, lpips, openslide, tifffile, imagecodecs, defusedxml; print('gpu_setup: imports ok')"
