"""Baselines on real patches: f-AnoGAN, StyleGAN2 + LPIPS projection and the supervised DenseNet-121, next to the
proposed translation model, all trained in this run on the PCam subset within a wall-clock budget per method and
scored on its `valid` split (1.5k normal vs 1.5k tumour). Prints a markdown table of AUC and AP per score, then a
scoring-speed table (patches/s at the same patch size).

Unsupervised methods train on healthy `train/0` only; the supervised classifier on both classes of `train`.
StyleGAN2 projection is slow (it optimises every patch), so it scores a class-balanced subset of `valid`
(`--projection-limit`) with `--projection-steps` steps (the paper uses 1000); the table says how many patches each
method scored.

Long run (about 4 x 20 min of training on a CPU, plus scoring):
    OMP_NUM_THREADS=2 python bench/pcam_baselines.py --budget 1200 --out bench/out/pcam_baselines
Smoke test (a minute or two):
    OMP_NUM_THREADS=1 python bench/pcam_baselines.py --budget 10 --train-limit 64 --valid-limit 32 \
        --projection-limit 8 --projection-steps 5 --speed-n 4 --out /tmp/pcam_baselines_smoke
"""
from __future__ import annotations
import argparse, json, sys, time, traceback
from pathlib import Path
import numpy as np, pandas as pd, torch
from histo_i2i.core import shared_data, skip_reason, atomic_path, atomic_write_text, seed_everything
from histo_i2i.data import pcam_folder, load_batch
from histo_i2i.detector import score_dataset, load_detector
from histo_i2i.metrics import detection_metrics
from histo_i2i.fanogan import FAnoGANDetector
from histo_i2i.stylegan2 import StyleGAN2Detector
from histo_i2i.supervised import SupervisedDetector

def md_table(df) -> str:
    "A DataFrame as a markdown table (no extra dependency)."
    cols = [str(c) for c in df.columns]
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '|'.join('---' for _ in cols) + '|']
    lines += ['| ' + ' | '.join(str(v) for v in r) + ' |' for r in df.itertuples(index=False)]
    return '\n'.join(lines)

def balanced(ds, n, seed=0):
    "A seeded class-balanced subset of at most n items (all when n is None)."
    if n is None or n >= len(ds): return ds
    rng, idx = np.random.default_rng(seed), []
    for l in np.unique(ds.labels):
        li = rng.permutation(np.flatnonzero(ds.labels == l)); idx += li[:n // len(np.unique(ds.labels))].tolist()
    return ds.subset(np.sort(idx))

def make(method, a):
    "An untrained detector of `method` with this run's settings."
    common = dict(device=a.device, seed=a.seed, max_seconds=a.budget)
    if method == 'fanogan':
        return FAnoGANDetector(size=a.size, crop='center', width=a.fanogan_width, iters=10**7, encoder_iters=10**7,
                               batch_size=a.batch_size, **common)
    if method == 'stylegan2':
        return StyleGAN2Detector(size=a.size, crop='resize', width=a.stylegan2_width, iters=10**7, batch_size=a.batch_size,
                                 projection_steps=a.projection_steps, **common)
    if method == 'supervised':
        return SupervisedDetector(arch=a.supervised_arch, size=a.supervised_size, iters=10**7, batch_size=a.batch_size, **common)
    if method == 'translation':
        from histo_i2i.translation_detector import TranslationDetector
        return TranslationDetector(size=a.size, width=a.translation_width, iters=10**7, batch_size=a.batch_size,
                                   device=a.device, seed=a.seed)
    raise SystemExit(f"unknown method {method!r}")

def train(method, a, train0, train01, out):
    "Train (or load, when out/<method>/checkpoint.pt exists) within the budget; returns (detector, seconds)."
    rd = out/method
    if (rd/'checkpoint.pt').exists(): return load_detector(rd, device=a.device), float('nan')
    det, t0 = make(method, a), time.time()
    if method == 'translation': det.fit(train0, run_dir=rd/'train', max_seconds=a.budget, progress=False)
    else: det.fit(train01 if method == 'supervised' else train0, progress=False)
    sec = time.time() - t0
    det.save(rd)
    return det, sec

def speed(det, x, method, a):
    "Scoring patches/s on the batch x (StyleGAN2: projection with --speed-steps steps, extrapolated to 1000)."
    if method == 'stylegan2':
        det.config.projection_steps = a.speed_steps
    det.score(x[:2])                                   # warm-up
    t0 = time.time(); det.score(x); dt = time.time() - t0
    rate = len(x) / dt
    if method == 'stylegan2': rate *= a.speed_steps / 1000
    return rate

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=None, help='PCam-layout folder (default: shared pcam-subset)')
    p.add_argument('--out', default='bench/out/pcam_baselines')
    p.add_argument('--methods', default='translation,fanogan,stylegan2,supervised')
    p.add_argument('--budget', type=float, default=1200, help='training wall-clock seconds per method')
    p.add_argument('--size', type=int, default=64, help='patch size of the GANs and the translation model (f-AnoGAN: centre crop)')
    p.add_argument('--fanogan-width', type=int, default=32)
    p.add_argument('--stylegan2-width', type=int, default=16)
    p.add_argument('--translation-width', type=int, default=32)
    p.add_argument('--supervised-arch', default='densenet121')
    p.add_argument('--supervised-size', type=int, default=0, help='0 = native 96 px')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--train-limit', type=int, default=None, help='training patches per class (default all)')
    p.add_argument('--valid-limit', type=int, default=None, help='valid patches scored (balanced; default all 3000)')
    p.add_argument('--projection-limit', type=int, default=200, help='valid patches scored by StyleGAN2 projection')
    p.add_argument('--projection-steps', type=int, default=200)
    p.add_argument('--speed-n', type=int, default=32, help='patches timed per method')
    p.add_argument('--speed-steps', type=int, default=50, help='projection steps timed (rate extrapolated to 1000 steps)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args(argv)
    data = Path(a.data) if a.data else shared_data('pcam-subset')
    if data is None: print(skip_reason('pcam-subset')); return 0
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    seed_everything(a.seed)
    lim = None if a.train_limit is None else 2 * a.train_limit
    train01 = pcam_folder(data, 'train', labels=(0, 1), limit=lim, seed=a.seed)
    train0 = train01.subset(train01.labels == 0)
    valid = pcam_folder(data, 'valid', labels=(0, 1), limit=a.valid_limit, seed=a.seed)
    print(f"data {data}: train healthy {len(train0)}, train both {len(train01)}, valid {len(valid)}; "
          f"budget {a.budget:.0f}s per method; torch threads {torch.get_num_threads()}", flush=True)
    rows, speeds, notes = [], [], {}
    xs = load_batch(valid, np.arange(min(a.speed_n, len(valid))))
    for method in [m.strip() for m in a.methods.split(',') if m.strip()]:
        try:
            det, sec = train(method, a, train0, train01, out)
            n_iter = det.step
            ds = balanced(valid, a.projection_limit, a.seed) if method == 'stylegan2' else valid
            t0 = time.time()
            df = score_dataset(det, ds, bs=64, progress=False)
            with atomic_path(out/f'scores_{method}.csv') as tmp: df.to_csv(tmp, index=False)
            score_sec = time.time() - t0
            for col in [c for c in df.columns if c.startswith('score_')]:
                m = detection_metrics(df.label.to_numpy(), df[col].to_numpy(), n_boot=200, seed=a.seed)
                rows.append(dict(method=method, score=col[6:], n_scored=len(df), train_s=round(sec), iters=n_iter,
                                 auc=f"{m['auc']:.3f} [{m['auc_lo']:.3f}, {m['auc_hi']:.3f}]",
                                 ap=f"{m['ap']:.3f} [{m['ap_lo']:.3f}, {m['ap_hi']:.3f}]"))
            if method != 'supervised':
                speeds.append(dict(method=method, patches_per_s=speed(det, xs, method, a)))
            extra = {'weights': getattr(det.config, 'weights', None), 'lpips': getattr(det.config, 'lpips_backbone', None)}
            notes[method] = {k: v for k, v in extra.items() if v}
            print(f"{method}: trained {sec:.0f}s ({n_iter} iterations), scored {len(df)} in {score_sec:.0f}s {notes[method]}", flush=True)
        except Exception as e:
            traceback.print_exc()
            rows.append(dict(method=method, score='-', n_scored=0, train_s=0, iters=0, auc=f'failed: {type(e).__name__}', ap=str(e)[:80]))
    table = pd.DataFrame(rows)
    print('\n## Detection on PCam-subset valid (AUC / AP with 95% bootstrap intervals)\n')
    print(md_table(table))
    sp = pd.DataFrame(speeds)
    if len(sp):
        sp['patch_px'] = a.size
        if 'translation' in set(sp.method):
            ref = float(sp.loc[sp.method == 'translation', 'patches_per_s'].iloc[0])
            sp['translation_speedup'] = (ref / sp.patches_per_s).round(1)
        sp['patches_per_s'] = sp.patches_per_s.map(lambda v: f"{v:.3g}")
        print(f"\n## Scoring speed ({a.device}, {a.size} px; StyleGAN2 = projection, timed with {a.speed_steps} steps, "
              f"extrapolated to the paper's 1000)\n")
        print(md_table(sp))
    print('\nnotes:', json.dumps(notes))
    atomic_write_text(out/'table.md', md_table(table) + ('\n\n' + md_table(sp) if len(sp) else '') + '\n')
    return 0

if __name__ == '__main__': sys.exit(main())
