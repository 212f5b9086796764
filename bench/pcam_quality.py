"""Quality of every method on real tissue: the PCam subset, one harness, a stated training budget per method.

Trains each method on `pcam-subset/train` (healthy patches; both classes for the supervised reference) for
`--minutes` of wall-clock time on this machine, scores `valid` (1500 normal + 1500 tumour unless
`--valid-limit`), and prints AUC and AP with stratified bootstrap 95 % intervals beside the floors that
learn nothing: mean saturation, the colour detector, and a fixed Gaussian blur scored by 1 − SSIM.
When `ssl` (the self-supervised backbone, scored by k-NN on its features) runs too, it runs before `translation`,
whose model is given it (`ssl_model`, unless `--set translation.ssl_model=...` names another) and adds the
`ssl` distance rows.
Run folders and score files go to `--out/<method>/` and `--out/scores_<method>.csv`; a rerun resumes
training where it stopped and re-scores. Settings are chosen on `valid` only; a held-out split judges them.

    python bench/pcam_quality.py --minutes 30 --out runs/bench/pcam_quality
    python bench/pcam_quality.py --methods translation --minutes 10 --set translation.width=16
    python bench/pcam_quality.py --methods ssl,translation --minutes 8 --valid-limit 1000
    python bench/pcam_quality.py --methods ssl,translation --minutes 20 --set ssl.minutes=10 --valid-limit 1000
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from histo_i2i.core import shared_data, skip_reason, atomic_write_text
from histo_i2i.data import pcam_folder, balanced_subset
from histo_i2i.detector import METHODS, score_dataset
from histo_i2i.metrics import detection_metrics
from histo_i2i.report import write_scores, row_label

TRAINED = ('ssl', 'translation', 'ae', 'fanogan', 'stylegan2', 'supervised')
FLOORS = ('saturation', 'colour', 'blur')
# the CPU settings each method is measured with (anything else: --set METHOD.FIELD=VALUE)
CPU_SETTINGS = dict(
    ssl=dict(),
    translation=dict(),
    ae=dict(),
    fanogan=dict(size=64, width=32, batch_size=32),
    stylegan2=dict(size=64, width=16, batch_size=16, projection_steps=100, w_avg_samples=500),
    supervised=dict(arch='densenet121', batch_size=32),
)
SUBSET = dict(stylegan2=200)     # projection is slow: StyleGAN2 scores a balanced subset of this many patches

def mean_saturation(ds, bs=256) -> np.ndarray:
    "HSV saturation averaged over each patch (cancer is more purple, i.e. saturated, on average)."
    out = []
    for x, _ in torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=False):
        x = (x + 1) / 2
        mx, mn = x.max(1).values, x.min(1).values
        out.append(((mx - mn) / mx.clamp_min(1e-6)).mean((1, 2)).numpy())
    return np.concatenate(out)

def markdown(df:pd.DataFrame) -> str:
    "A DataFrame as a GitHub markdown table."
    lines = ['| ' + ' | '.join(map(str, df.columns)) + ' |', '|' + '---|' * len(df.columns)]
    return '\n'.join(lines + ['| ' + ' | '.join(map(str, r)) + ' |' for r in df.itertuples(index=False)]) + '\n'

def translation_figure(det, valid, scores:pd.DataFrame, path, n:int=4, seed:int=0):
    "Healthy and tumour valid patches: input, translation with the closest healthy exemplar style, 1 − SSIM map, score."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from histo_i2i.data import load_batch, to_image
    rng = np.random.default_rng(seed)
    idx = [int(i) for l in (0, 1) for i in rng.choice(np.flatnonzero(valid.labels == l), n, replace=False)]
    x = det.prepare(load_batch(valid, idx))
    with torch.no_grad(): xt = det.recommended_translation(x).cpu()
    maps = det.score_map(x)['ssim']
    score = scores.set_index('path').loc[[valid.paths[i] for i in idx], 'score_ssim'].to_numpy()
    fig, axs = plt.subplots(3, 2 * n, figsize=(2 * n * 1.3, 3 * 1.4))
    for j, i in enumerate(idx):
        axs[0, j].imshow(to_image(x[j].cpu())); axs[1, j].imshow(to_image(xt[j])); axs[2, j].imshow(maps[j], cmap='magma', vmin=0, vmax=1)
        axs[0, j].set_title(f"{'tumour' if valid.labels[i] else 'normal'}\nscore {score[j]:.3f}", fontsize=8)
    for a, t in zip(axs[:, 0], ('patch', 'translation', '1 - SSIM')): a.set_ylabel(t, fontsize=8)
    for a in axs.flat: a.set_xticks([]); a.set_yticks([])
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)

def parse_sets(items) -> dict:
    "['translation.width=16'] -> {'translation': {'width': 16}}"
    out = {}
    for it in items:
        key, _, val = it.partition('=')
        method, _, field = key.partition('.')
        if not (method and field and _): raise SystemExit(f"--set {it!r}: expected METHOD.FIELD=VALUE")
        try: val = json.loads(val)
        except ValueError: pass
        out.setdefault(method, {})[field] = val
    return out

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=None, help='PCam-layout folder (default: the shared pcam-subset)')
    p.add_argument('--methods', default=','.join(FLOORS + TRAINED), help='comma-separated: ' + ', '.join(FLOORS + TRAINED))
    p.add_argument('--minutes', type=float, default=30.0, help='training budget per method (wall clock)')
    p.add_argument('--set', dest='sets', action='append', default=[], metavar='METHOD.FIELD=VALUE')
    p.add_argument('--valid-limit', type=int, default=None, help='balanced subset of valid (default: all)')
    p.add_argument('--n-boot', type=int, default=1000)
    p.add_argument('--device', default=None)
    p.add_argument('--out', default='runs/bench/pcam_quality')
    a = p.parse_args(argv)

    root = Path(a.data) if a.data else shared_data('pcam-subset')
    if root is None or not root.exists(): print(skip_reason('pcam-subset')); return 0
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    valid = pcam_folder(root, 'valid', labels=(0, 1), limit=a.valid_limit)
    train_healthy = pcam_folder(root, 'train', labels=(0,))
    train_both = pcam_folder(root, 'train', labels=(0, 1))
    sets, methods = parse_sets(a.sets), [m.strip() for m in a.methods.split(',') if m.strip()]
    if 'ssl' in methods and 'translation' in methods:     # the translation model is given the backbone trained here
        methods.remove('ssl'); methods.insert(methods.index('translation'), 'ssl')
        sets.setdefault('translation', {}).setdefault('ssl_model', str(out/'ssl'))
    print(f"train: {len(train_healthy)} healthy (+{len(train_both) - len(train_healthy)} tumour for supervised); "
          f"valid: {(valid.labels == 0).sum()} normal + {(valid.labels == 1).sum()} tumour; {torch.get_num_threads()} threads", flush=True)
    rows = []
    for m in methods:
        t0 = time.time(); info = {}
        if m == 'saturation':
            df = pd.DataFrame(dict(path=valid.paths, label=valid.labels, score_saturation=mean_saturation(valid)))
            write_scores(df, out/'scores_saturation.csv', method='saturation')
        else:
            cls = METHODS[m]
            det = cls(device=a.device, **{**CPU_SETTINGS.get(m, {}), **({'minutes': a.minutes, 'iters': 10**9} if m in TRAINED else {}),
                                          **sets.get(m, {})})   # --set METHOD.minutes=M gives one method its own budget
            if m in TRAINED: det.fit(train_both if m == 'supervised' else train_healthy, run_dir=out/m)
            else: det.fit(train_healthy)
            info = dict(iters=det.step, train_min=round((time.time() - t0) / 60, 1)) if m in TRAINED else {}
            ds = valid if m not in SUBSET else valid.subset(balanced_subset(valid.labels, SUBSET[m]))
            t1 = time.time()
            df = score_dataset(det, ds)
            info['patches_per_s'] = round(len(ds) / (time.time() - t1), 1)
            write_scores(df, out/f'scores_{m}.csv', **det.metadata())
            if m == 'translation': translation_figure(det, ds, df, out/'translation_pcam.png')
        meta = json.loads((out/f'scores_{m}.csv').with_suffix('.json').read_text())
        for c in [c for c in df.columns if c.startswith('score_')]:
            r = detection_metrics(df.label, df[c], n_boot=a.n_boot)
            rows.append(dict(method=m, score=c[6:], row=row_label(m, c[6:], meta), n=len(df), **info,
                             auc=f"{r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]",
                             ap=f"{r['ap']:.3f} [{r['ap_lo']:.3f}, {r['ap_hi']:.3f}]"))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    atomic_write_text(out/'table.md', markdown(table))
    table.to_csv(out/'table.csv', index=False)
    print(markdown(table))
    return 0

if __name__ == '__main__': sys.exit(main())
