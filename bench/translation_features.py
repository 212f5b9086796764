"""The translation model scored in feature spaces, on a real patch split: does comparing features beat 1 − SSIM?

For a trained translation run, scores every patch of `DATA/SPLIT` by
- `x_vs_T`: the distance between the untrained backbone's features (`features.feature_extractor('untrained')`, the
  kNN floor's network) of the patch and of its translation, per stage, as the mean over locations of the cosine
  distance ('local') or as the cosine distance of the texture statistics ('stats'), for own-style and
  closest-exemplar translations (the question of issue "the proposed method in its regime": the kNN backbone's features
  of the patch against those of its healthy translation);
- `content_knn`: the distance of the patch's content-encoder statistics (channel mean and std after each content stage,
  standardised on the training patches) to the nearest healthy training patch, i.e. the translation model's own
  encoder used as the backbone of a nearest-neighbour score;
- beside 1 − SSIM with own and closest-exemplar styles, and the rank sum of the best two families.
Prints one AUC per score, best first, and writes them to `--out` (CSV). Scores are chosen on `valid` only.

    python bench/translation_features.py --model runs/bench/curve40/translation --data ../shared/data/c16-40x --out runs/bench/tfeat.csv
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path
import numpy as np, pandas as pd, torch, torch.nn.functional as F
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score
from histo_i2i.data import pcam_folder, load_batch
from histo_i2i.detector import load_detector
from histo_i2i.features import feature_extractor, texture_stats
from histo_i2i.similarity import ssim

def content_stats(gen, x) -> torch.Tensor:
    "Channel mean and std after each stage of the content encoder, concatenated."
    out, h = [], x
    for m in gen.enc_content:
        h = m(h); out += [h.mean((2, 3)), h.std((2, 3))]
    return torch.cat(out, 1).float()

@torch.no_grad()
def scores(det, fe, x) -> dict:
    out, fx = {}, fe(x)
    for kind in ('own', 'exemplar'):
        t = det.translations(x, kind)                                  # K×N×3×H×W
        ds = torch.stack([1 - ssim(x, o) for o in t])
        best = ds.argmin(0)
        out[f'ssim_{kind}'] = ds.min(0).values
        ft = fe(t[best, torch.arange(len(x))])
        for s, (a, b) in enumerate(zip(fx, ft)):
            out[f'x_vs_T_local{s}_{kind}'] = (1 - F.cosine_similarity(a, b, dim=1)).mean((1, 2))
            out[f'x_vs_T_stats{s}_{kind}'] = 1 - (texture_stats(a) * texture_stats(b)).sum(1)
    return out

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', required=True, help='translation run folder')
    p.add_argument('--data', required=True, help='PCam-layout folder')
    p.add_argument('--split', default='valid')
    p.add_argument('--bs', type=int, default=8)
    p.add_argument('--out', default=None, help='CSV of the AUCs')
    a = p.parse_args(argv)
    det = load_detector(a.model); det.model.eval(); gen = det.model.gen
    fe = feature_extractor('untrained')
    valid, train = pcam_folder(a.data, a.split, labels=(0, 1)), pcam_folder(a.data, 'train', labels=(0,))
    acc, cv, ct = {}, [], []
    with torch.no_grad():
        for i in range(0, len(valid), a.bs):
            x = det.prepare(load_batch(valid, range(i, min(i + a.bs, len(valid)))))
            for k, v in scores(det, fe, x).items(): acc.setdefault(k, []).append(v.float())
            cv.append(content_stats(gen, x))
        for i in range(0, len(train), a.bs): ct.append(content_stats(gen, det.prepare(load_batch(train, range(i, min(i + a.bs, len(train)))))))
    s = {k: torch.cat(v).numpy() for k, v in acc.items()}
    ct, cv = torch.cat(ct), torch.cat(cv)
    mu, sd = ct.mean(0), ct.std(0) + 1e-6
    s['content_knn'] = torch.cdist((cv - mu) / sd, (ct - mu) / sd).min(1).values.numpy()
    y = valid.labels
    auc = {k: roc_auc_score(y, v) for k, v in s.items()}
    ssim_best = max(('ssim_own', 'ssim_exemplar'), key=auc.get)
    auc[f'rank sum: content_knn + {ssim_best}'] = roc_auc_score(y, rankdata(s['content_knn']) + rankdata(s[ssim_best]))
    table = pd.DataFrame(sorted(auc.items(), key=lambda kv: -kv[1]), columns=['score', 'auc'])
    table['iterations'] = det.step
    print(f"{a.model}: {det.step} iterations; {a.split}: {len(y)} patches")
    print(table.to_string(index=False, float_format='%.3f'))
    if a.out: table.to_csv(a.out, index=False)
    return 0

if __name__ == '__main__': sys.exit(main())
