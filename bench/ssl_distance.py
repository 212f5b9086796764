"""The self-supervised backbone on real tissue: its k-NN score, and its distance against a stand-in reconstruction.

Given an `ssl` run folder (`histo-i2i train --method ssl --data PCAM --out RUN`), scores a balanced subset of PCam
`valid` with the run's own score (k-NN cosine distance to healthy training embeddings), and compares every patch
with a fixed Gaussian blur of it (sigma 1 px, the blur floor's reconstruction) by 1 − SSIM and by the SSL distance.
Prints AUC and AP with stratified bootstrap 95 % intervals; with `--untrained`, also the SSL distance of the same
architecture with its initial (random) weights, which says what the training added.

    python bench/ssl_distance.py --model runs/ssl_pcam --valid-limit 1000
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from histo_i2i.core import shared_data, skip_reason, atomic_write_text
from histo_i2i.data import pcam_folder, iter_batches
from histo_i2i.detector import load_detector, score_dataset
from histo_i2i.methods.floors import BlurDetector
from histo_i2i.similarity import reconstruction_scores
from histo_i2i.methods.ssl import SSLDetector
from histo_i2i.features import load_ssl_backbone, ssl_distance
from histo_i2i.metrics import detection_metrics
from histo_i2i.report import row_label

def blur_scores(ds, nets:dict, sigma:float=1., bs:int=64) -> dict:
    "1 − SSIM ('ssim') and each named backbone's SSL distance between every patch of `ds` and its Gaussian blur: {name: array}."
    blur, out = BlurDetector(sigma=sigma, device='cpu'), {k: [] for k in ('ssim', *nets)}
    with torch.no_grad():
        for x, _ in iter_batches(ds, bs):
            xb = blur.blurred(x)
            out['ssim'].append(reconstruction_scores(x, xb)['ssim'].numpy())
            for name, net in nets.items(): out[name].append(ssl_distance(net, x, xb).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', required=True, help='ssl run folder (or checkpoint)')
    p.add_argument('--data', default=None, help='PCam-layout folder (default: the shared pcam-subset)')
    p.add_argument('--valid-limit', type=int, default=1000, help='balanced subset of valid')
    p.add_argument('--untrained', action='store_true', help='also the SSL distance with the initial weights')
    p.add_argument('--n-boot', type=int, default=1000)
    p.add_argument('--out', default='bench/out/ssl_distance.md')
    a = p.parse_args(argv)
    root = Path(a.data) if a.data else shared_data('pcam-subset')
    if root is None or not root.exists(): print(skip_reason('pcam-subset')); return 0
    valid = pcam_folder(root, 'valid', labels=(0, 1), limit=a.valid_limit)
    det = load_detector(a.model, device='cpu')
    t0 = time.time()
    df = score_dataset(det, valid)
    nets = {'ssl': load_ssl_backbone(a.model)[0]}
    if a.untrained: nets['ssl_untrained'] = SSLDetector(det.config, device='cpu').backbone.eval()   # the same run's initial weights
    scores = {('ssl', 'knn'): df.score_knn.to_numpy(), **{('blur', k): v for k, v in blur_scores(valid, nets).items()}}
    rows = []
    for (method, score), s in scores.items():
        r = detection_metrics(valid.labels, s, n_boot=a.n_boot)
        label = row_label(method, score) if score != 'ssl_untrained' else 'Blur floor SSL distance (untrained backbone)'
        rows.append(dict(method=method, score=score, row=label, n=len(s),
                         auc=f"{r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]", ap=f"{r['ap']:.3f} [{r['ap_lo']:.3f}, {r['ap_hi']:.3f}]"))
    table = pd.DataFrame(rows)
    lines = ['| ' + ' | '.join(table.columns) + ' |', '|' + '---|' * len(table.columns)]
    text = '\n'.join(lines + ['| ' + ' | '.join(map(str, r)) + ' |' for r in table.itertuples(index=False)]) + '\n'
    text += f"\nssl run: {a.model} (step {det.step}); {len(valid)} valid patches; {time.time() - t0:.0f} s\n"
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out, text)
    print(text)
    return 0

if __name__ == '__main__': sys.exit(main())
