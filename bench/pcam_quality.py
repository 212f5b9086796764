"""Quality of every method on the PCam subset: `bench/quality.py` with the PCam defaults (kept so its documented runs still work).

Trains each method on `pcam-subset/train` (healthy patches; both classes for the supervised reference) for
`--minutes` of wall-clock time on this machine, scores `valid` (1500 normal + 1500 tumour unless
`--valid-limit`), and reports AUC and AP with stratified bootstrap 95 % intervals beside the floors that
learn nothing (mean saturation, the colour detector, a fixed Gaussian blur scored by 1 − SSIM, the
untrained-feature kNN floor). The method settings are the `pcam` profile's (`--profile`); see `bench/quality.py` for
everything else (`--set METHOD.FIELD=VALUE`, `ssl` before `translation`, run folders and score files).

    python bench/pcam_quality.py --minutes 30 --out runs/bench/pcam_quality
    python bench/pcam_quality.py --methods translation --minutes 10 --set translation.width=16
    python bench/pcam_quality.py --methods ssl,translation --minutes 8 --valid-limit 1000
    python bench/pcam_quality.py --methods ssl,translation --minutes 20 --set ssl.minutes=10 --valid-limit 1000
"""
from __future__ import annotations
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import main, FLOORS, TRAINED

if __name__ == '__main__':
    sys.exit(main(default_out='runs/bench/pcam_quality', default_methods=','.join(FLOORS + TRAINED), default_minutes=30.0))
