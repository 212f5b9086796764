"""Real-data check of the translation detector on the PCam subset.

Trains on the healthy patches of `pcam-subset/train/0` for a stated CPU time budget, scores
`valid` (1500 normal + 1500 tumour), and prints AUC and AP of 1 - SSIM and LPIPS beside two colour
floors (mean saturation, and the Mahalanobis distance of the mean colour, `detector.ColourDetector`).
Settings are chosen on `valid` only. Prints a markdown table.

    OMP_NUM_THREADS=2 python bench/pcam_translation.py --minutes 20 --out runs/pcam_translation
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np, torch
from sklearn.metrics import roc_auc_score, average_precision_score
from histo_i2i.core import shared_data, skip_reason, seed_everything, atomic_write_text
from histo_i2i.data import pcam_folder
from histo_i2i.detector import ColourDetector, score_dataset
from histo_i2i.translation import TranslationConfig
from histo_i2i.translation_detector import TranslationDetector

def mean_saturation(ds, bs=256) -> np.ndarray:
    "HSV saturation averaged over each patch (the colour floor: cancer is more purple / saturated)."
    out = []
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=False)
    for x, _ in loader:
        x = (x + 1) / 2
        mx, mn = x.max(1).values, x.min(1).values
        out.append(((mx - mn) / mx.clamp_min(1e-6)).mean((1, 2)).numpy())
    return np.concatenate(out)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=None, help='PCam-layout folder (default: shared pcam-subset)')
    p.add_argument('--minutes', type=float, default=20.0, help='training time budget (wall clock)')
    p.add_argument('--iters', type=int, default=100_000, help='iteration cap (the time budget usually stops first)')
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--width', type=int, default=16)
    p.add_argument('--n-res', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--lr', type=float, default=5e-4)
    p.add_argument('--score-style', default='exemplar', choices=['exemplar', 'random'])
    p.add_argument('--n-styles', type=int, default=4)
    p.add_argument('--compare-styles', action='store_true', help="also score with the other score style (exemplar vs random)")
    p.add_argument('--train-limit', type=int, default=None)
    p.add_argument('--valid-limit', type=int, default=None, help='balanced subset of valid (default: all 3000)')
    p.add_argument('--lpips-backbone', default='', help="'' = ImageNet if cached, else 'random' (labelled)")
    p.add_argument('--device', default=None)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default='runs/pcam_translation', help='run folder (resumes if it holds a checkpoint)')
    a = p.parse_args(argv)

    root = Path(a.data) if a.data else shared_data('pcam-subset')
    if root is None or not root.exists(): print(skip_reason('pcam-subset')); return 0
    seed_everything(a.seed)
    train = pcam_folder(root, 'train', labels=(0,), size=a.size, limit=a.train_limit, seed=a.seed)
    valid = pcam_folder(root, 'valid', labels=(0, 1), size=a.size, limit=a.valid_limit, seed=a.seed)
    print(f"train: {len(train)} healthy; valid: {(valid.labels == 0).sum()} normal + {(valid.labels == 1).sum()} tumour; "
          f"torch threads {torch.get_num_threads()}", flush=True)

    cfg = TranslationConfig(size=a.size, width=a.width, d_width=a.width, n_res=a.n_res, batch_size=a.batch_size, lr=a.lr,
                            iters=a.iters, score_style=a.score_style, n_styles=a.n_styles, lpips_backbone=a.lpips_backbone,
                            seed=a.seed, checkpoint_every=200, sample_every=200, lr_step=10**9)
    out = Path(a.out)
    t0 = time.time()
    det = TranslationDetector(cfg, device=a.device).fit(train, run_dir=out, max_seconds=a.minutes*60)
    det.save(out)
    t_train = time.time() - t0
    print(f"trained {det.step} iterations in {t_train/60:.1f} min ({det.step/max(t_train,1e-9):.2f} it/s)", flush=True)

    t0 = time.time()
    df = score_dataset(det, valid)
    t_score = time.time() - t0
    df.to_csv(out/'scores_valid.csv', index=False)
    y = df.label.to_numpy()
    rows = []
    for k in det.score_names:
        s = df[f'score_{k}'].to_numpy()
        name = f"translation 1-SSIM" if k == 'ssim' else f"translation LPIPS ({det.lpips_label})"
        rows.append((f"{name}, {a.score_style} style", roc_auc_score(y, s), average_precision_score(y, s)))
    if a.compare_styles:
        import dataclasses
        other = 'random' if a.score_style == 'exemplar' else 'exemplar'
        det.config = dataclasses.replace(det.config, score_style=other)
        s2 = det.score(valid)
        det.config = dataclasses.replace(det.config, score_style=a.score_style)
        for k in det.score_names:
            name = f"translation 1-SSIM" if k == 'ssim' else f"translation LPIPS ({det.lpips_label})"
            rows.append((f"{name}, {other} style" + (f" (x{a.n_styles})" if other == 'random' else ''),
                         roc_auc_score(y, s2[k]), average_precision_score(y, s2[k])))
    sat = mean_saturation(valid)
    rows.append(('colour floor: mean saturation', roc_auc_score(y, sat), average_precision_score(y, sat)))
    col = ColourDetector(device='cpu').fit(train).score(valid)['colour']
    rows.append(('colour floor: mean-colour Mahalanobis', roc_auc_score(y, col), average_precision_score(y, col)))

    cmd = 'python bench/pcam_translation.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    lines = [f"PCam subset, valid ({(y == 0).sum()} normal / {(y == 1).sum()} tumour), {a.size} px; "
             f"width {a.width}, {a.n_res} res blocks, batch {a.batch_size}x2, lr {a.lr}, score style {a.score_style}; "
             f"{det.step} iterations in {t_train/60:.1f} min on {det.device} ({torch.get_num_threads()} threads); "
             f"scoring {len(df)/t_score:.1f} patches/s", '', f"`{cmd}`", '',
             '| score | AUC | AP |', '|---|---|---|']
    lines += [f"| {n} | {auc:.3f} | {ap:.3f} |" for n, auc, ap in rows]
    text = '\n'.join(lines)
    print(text)
    atomic_write_text(out/'pcam_translation.md', text + '\n')
    return 0

if __name__ == '__main__': sys.exit(main())
