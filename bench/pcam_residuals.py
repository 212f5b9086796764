"""Where a trained translation model's residual carries its signal: 1 − SSIM variants on real tissue, against a blur.

Given a translation run folder, scores a balanced subset of PCam `valid` by 1 − SSIM between each patch and three
"reconstructions" of it: the own-style translation, the closest healthy exemplar's translation (the recommended
score) and a fixed Gaussian blur (sigma 1 px, the blur floor). Each is computed on RGB (as the library does), grey, the
haematoxylin and eosin channels (`skimage.color.rgb2hed`), at half resolution, with SSIM's window widened to
sigma 3 px, and between low-passed copies of both (only the coarse structure compared); also the mean absolute difference. Prints the AUC of every variant (rows) for every reconstruction
(columns) and writes them to `--out`. A variant that puts the translations well ahead of the blur locates what the
model has learned; one where they are level says the residual measures fine detail, not morphology.

    python bench/pcam_residuals.py --model runs/bench/pcam_t30/translation --valid-limit 600
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2gray, rgb2hed
from skimage.metrics import structural_similarity
from skimage.transform import rescale
from sklearn.metrics import roc_auc_score
from histo_i2i.core import shared_data, skip_reason, atomic_write_text
from histo_i2i.data import pcam_folder, iter_batches, to_image
from histo_i2i.detector import load_detector
from histo_i2i.methods.floors import BlurDetector

def _unit(t) -> np.ndarray:
    "[-1, 1] tensors N×3×H×W -> float64 N×H×W×3 on [0, 1], as the patches are stored (8 bits)."
    return to_image(t) / 255.

def _dissimilarity(a, b, sigma:float=1.5, data_range:float|None=None) -> float:
    "1 − SSIM of two H×W×C images (Gaussian window, population covariance, as the library's); range from the pair unless given."
    rng = data_range if data_range is not None else max(np.ptp(np.concatenate([a.ravel(), b.ravel()])), 1e-6)
    return 1 - structural_similarity(a, b, channel_axis=-1, data_range=rng, gaussian_weights=True, sigma=sigma, use_sample_covariance=False)

def residual_variants(a, b) -> dict:
    "Every variant's score of one patch `a` against its reconstruction `b` (H×W×3 on [0, 1])."
    half = [rescale(im, 0.5, channel_axis=-1, anti_aliasing=True) for im in (a, b)]
    ha, hb = rgb2hed(a), rgb2hed(b)
    return {'rgb': _dissimilarity(a, b, data_range=1.), 'grey': _dissimilarity(rgb2gray(a)[..., None], rgb2gray(b)[..., None], data_range=1.),
            'haematoxylin': _dissimilarity(ha[..., :1], hb[..., :1]), 'eosin': _dissimilarity(ha[..., 1:2], hb[..., 1:2]),
            'rgb, half resolution': _dissimilarity(*half, data_range=1.), 'rgb, sigma 3': _dissimilarity(a, b, sigma=3., data_range=1.),
            **{f'rgb, both low-passed (sigma {s})': _dissimilarity(*(gaussian_filter(im, (s, s, 0)) for im in (a, b)), data_range=1.) for s in (1, 3)},
            'mean |difference|': float(np.abs(a - b).mean())}

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', required=True, help='translation run folder (or checkpoint)')
    p.add_argument('--data', default=None, help='PCam-layout folder (default: the shared pcam-subset)')
    p.add_argument('--valid-limit', type=int, default=600, help='balanced subset of valid')
    p.add_argument('--out', default='bench/out/pcam_residuals.csv')
    a = p.parse_args(argv)
    root = Path(a.data) if a.data else shared_data('pcam-subset')
    if root is None or not root.exists(): print(skip_reason('pcam-subset')); return 0
    valid = pcam_folder(root, 'valid', labels=(0, 1), limit=a.valid_limit)
    det, blur = load_detector(a.model, device='cpu'), BlurDetector(sigma=1., device='cpu')
    t0, rows, done = time.time(), {'own style': [], 'closest exemplar': [], 'blur': []}, 0
    with torch.no_grad():
        for x, _ in iter_batches(valid, 50):
            x = det.prepare(x)
            recon = {'own style': det.translations(x, 'own')[0], 'closest exemplar': det.recommended_translation(x), 'blur': blur.blurred(x)}
            for name, r in recon.items(): rows[name] += [residual_variants(xa, ra) for xa, ra in zip(_unit(x), _unit(r))]
            done += len(x)
            print(f"{done}/{len(valid)}", end='\r', flush=True)
    print()
    labels = np.asarray(valid.labels)
    table = pd.DataFrame({name: pd.DataFrame(r).apply(lambda v: roc_auc_score(labels, v)) for name, r in rows.items()}).round(3)
    table.index.name = 'AUC'
    atomic_write_text(a.out, table.to_csv())
    print(table.to_string())
    print(f"\nmodel: {a.model} (step {det.step}); {len(valid)} valid patches; {time.time() - t0:.0f} s")
    return 0

if __name__ == '__main__': sys.exit(main())
