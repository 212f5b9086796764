"""Quality of methods on a real patch data set in PCam layout: one harness, a stated training budget per method, the floors in every table.

Trains each method on `DIR/train` (healthy patches; both classes for the supervised reference, which is skipped
with a note when `DIR/train` has no `1`), scores `DIR/SPLIT`, and writes `OUT/table.csv` and `OUT/table.md`: AUC and
AP with stratified bootstrap 95 % intervals, patches, training minutes and iterations, and the backbone labels, beside
the floors that learn nothing, which every table has: mean saturation, the colour detector, a fixed Gaussian blur
(σ 1 px) scored by 1 − SSIM on [0, 1] at the data's own size, and the untrained-feature kNN floor (`knn_floor`).

Method settings come from `--profile NAME` (`data/profiles/NAME.json`, default `pcam`): field F of method M is the
profile's `methods.M.F`, else the default of M's config dataclass (the CPU recipe), the same settings
`histo-i2i reproduce --profile NAME` trains with. `--minutes` replaces every trained method's budget, `--iters` caps its
iterations, and `--set METHOD.FIELD=VALUE` sets one field of one method last (read by `core.parse_overrides`, so a
misspelt field is refused with the valid names).
When `ssl` runs too, it runs before `translation`, whose model is given it (`ssl_model`, unless
`--set translation.ssl_model=...` names another). Run folders and score files go to `OUT/<method>/` and
`OUT/scores_<method>.csv`; a rerun resumes training where it stopped and re-scores. Settings are chosen on
`valid` only; a held-out split judges them.

    python bench/quality.py --profile c16-40x --data ../shared/data/c16-40x --split valid --methods translation,knn --out runs/q40
    python bench/quality.py --profile pcam --split valid --methods knn --limit 1000 --out runs/qpcam
    python bench/quality.py --profile c16-40x --methods translation,knn --minutes 0.2 --limit 40 --out /tmp/q
"""
from __future__ import annotations
import argparse, dataclasses, datetime, json, os, platform, shlex, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from histo_i2i.core import shared_data, skip_reason, atomic_path, atomic_write_text, HistoError, split_assignment, parse_overrides
from histo_i2i.data import pcam_folder, balanced_subset
from histo_i2i.detector import METHODS, score_dataset
from histo_i2i.engine import Trainable
from histo_i2i.metrics import detection_metrics
from histo_i2i.report import write_scores, row_label
from histo_i2i.reproduce import load_profile, expand_placeholders

TRAINED = tuple(m for m in METHODS if issubclass(METHODS[m], Trainable))       # the registry's methods that train
FLOORS = ('saturation', *(m for m in METHODS if METHODS[m].role == 'floor'))    # mean saturation is a score of this benchmark, not a method
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
    "Healthy and tumour patches: input, translation with the closest healthy exemplar style, 1 − SSIM map, score."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from histo_i2i.data import load_batch, to_image
    rng = np.random.default_rng(seed)
    n = min([n] + [int((valid.labels == l).sum()) for l in (0, 1)])
    if n == 0: return
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
    "['translation.width=16'] -> {'translation': {'width': '16'}} (converted by each method's config in `method_settings`)"
    out = {}
    for it in items:
        key, val = split_assignment(it, '--set', 'METHOD.FIELD=VALUE')
        method, dot, field = key.partition('.')
        if not dot: raise HistoError(None, f"--set {it!r} is not METHOD.FIELD=VALUE")
        out.setdefault(method, {})[field] = val
    return out

def method_settings(m:str, profile:dict, sets:dict, minutes:float|None, iters:int|None) -> dict:
    "The profile's settings of method `m` (its `methods` section), then --minutes / --iters for trained methods, then --set."
    kw = dict(profile.get('methods', {}).get(m, {}))
    if m in TRAINED:
        if minutes is not None: kw['minutes'] = minutes
        kw['iters'] = iters if iters is not None else kw.get('iters', 10**9)
    return parse_overrides({**kw, **sets.get(m, {})}, METHODS[m].config_class)     # --set METHOD.minutes=M gives one method its own budget

def metric_rows(m:str, df:pd.DataFrame, meta:dict, info:dict, n_boot:int) -> list[dict]:
    "One table row per score column of a score table."
    rows = []
    for c in [c for c in df.columns if c.startswith('score_')]:
        r = detection_metrics(df.label, df[c], n_boot=n_boot)
        rows.append(dict(method=m, score=c[6:], row=row_label(m, c[6:], meta), n=len(df),
                         **{k: round(float(r[k]), 4) for k in ('auc', 'auc_lo', 'auc_hi', 'ap', 'ap_lo', 'ap_hi')},
                         minutes=info.get('minutes', 0.0), iterations=info.get('iterations', 0),
                         lpips_backbone=meta.get('lpips_backbone', '') if 'lpips' in c else '',
                         feature_backbone=meta.get('feature_backbone', ''), patches_per_s=info.get('patches_per_s', '')))
    return rows

def table_markdown(table:pd.DataFrame) -> str:
    "The table with AUC and AP shown as 'value [lo, hi]'."
    t = table.copy()
    for k in ('auc', 'ap'): t[k] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in zip(t[k], t[f'{k}_lo'], t[f'{k}_hi'])]
    return markdown(t.drop(columns=['auc_lo', 'auc_hi', 'ap_lo', 'ap_hi']))

def write_results(table:pd.DataFrame, res:Path, script:str, argv):
    "`table` as a results CSV (bench/results/), with the command, date and machine in a `.json` beside it."
    with atomic_path(res) as tmp: table.to_csv(tmp, index=False)
    atomic_write_text(res.with_suffix('.json'), json.dumps(dict(
        command=f'python bench/{script} ' + ' '.join(map(shlex.quote, argv if argv is not None else sys.argv[1:])),
        date=datetime.date.today().isoformat(), machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}"), indent=1) + '\n')

def main(argv=None, default_data:str|None=None, default_out:str='runs/bench/quality', default_methods:str='translation,knn',
         default_minutes:float|None=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--profile', default='pcam', help='reproduction profile whose method settings are used (data/profiles/NAME.json; default: pcam)')
    p.add_argument('--data', default=default_data, help="PCam-layout folder (default: the profile's data)")
    p.add_argument('--split', default='valid', help='split that is scored (default: valid)')
    p.add_argument('--methods', default=default_methods, help='comma-separated, from: ' + ', '.join(('saturation', *METHODS)) +
                   ' (the floors are always added)')
    p.add_argument('--minutes', type=float, default=default_minutes, help="training budget of every trained method (default: the profile's)")
    p.add_argument('--iters', type=int, default=None, help='iteration cap of every trained method (quick checks)')
    p.add_argument('--set', dest='sets', action='append', default=[], metavar='METHOD.FIELD=VALUE')
    p.add_argument('--limit', '--valid-limit', dest='limit', type=int, default=None, help='balanced subset of the scored split (default: all)')
    p.add_argument('--train-limit', type=int, default=None, help='seeded subset of the training patches (quick checks)')
    p.add_argument('--n-boot', type=int, default=1000)
    p.add_argument('--device', default=None)
    p.add_argument('--out', default=default_out)
    p.add_argument('--results', default=None, help='also write the table to this CSV (e.g. bench/results/NAME.csv), with the command and date beside it')
    a = p.parse_args(argv)

    profile = load_profile(a.profile)
    if a.data: root = Path(a.data)
    elif profile['parameters'].get('data'): root = Path(expand_placeholders(profile['parameters']['data'], a.out))
    else: root = shared_data('pcam-subset') or Path(skip_reason('pcam-subset'))
    if not root.exists(): print(skip_reason(root.name) if not a.data else f"{root}: no such folder"); return 0 if not a.data else 1
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    scored = pcam_folder(root, a.split, labels=(0, 1), limit=a.limit)
    train_healthy = pcam_folder(root, 'train', labels=(0,), limit=a.train_limit)
    has_tumour = (root/'train'/'1').is_dir() and any((root/'train'/'1').iterdir())
    train_both = pcam_folder(root, 'train', labels=(0, 1), limit=a.train_limit) if has_tumour else None
    sets, methods = parse_sets(a.sets), [m.strip() for m in a.methods.split(',') if m.strip()]
    methods = [m for m in FLOORS if m not in methods] + methods
    for m in methods:
        if m != 'saturation' and m not in METHODS: raise SystemExit(f"unknown method {m!r}; available: {', '.join(('saturation', *METHODS))}")
    if 'ssl' in methods and 'translation' in methods:     # the translation model is given the backbone trained here
        methods.remove('ssl'); methods.insert(methods.index('translation'), 'ssl')
        sets.setdefault('translation', {}).setdefault('ssl_model', str(out/'ssl'))
    notes = []
    if 'supervised' in methods and not has_tumour:
        methods.remove('supervised'); notes.append(f"supervised: skipped, {root/'train'} has no tumour patches (no `1` folder)")
        print(notes[-1], flush=True)
    print(f"{root}: train {len(train_healthy)} healthy" + (f" (+{len(train_both) - len(train_healthy)} tumour for supervised)" if has_tumour else '') +
          f"; {a.split}: {(scored.labels == 0).sum()} normal + {(scored.labels == 1).sum()} tumour; {torch.get_num_threads()} threads", flush=True)
    rows = []
    for m in methods:
        t0, info = time.time(), {}
        if m == 'saturation':
            df = pd.DataFrame(dict(path=scored.paths, label=scored.labels, score_saturation=mean_saturation(scored)))
            write_scores(df, out/'scores_saturation.csv', method='saturation')
        else:
            det = METHODS[m](device=a.device, **method_settings(m, profile, sets, a.minutes, a.iters))
            if m in TRAINED: det.fit(train_both if m == 'supervised' else train_healthy, run_dir=out/m)
            else: det.fit(train_healthy); det.save(out/m)
            info = dict(minutes=round((time.time() - t0) / 60, 2), iterations=int(det.step) if m in TRAINED else 0)
            ds = scored if m not in SUBSET else scored.subset(balanced_subset(scored.labels, SUBSET[m]))
            t1 = time.time()
            df = score_dataset(det, ds)
            info['patches_per_s'] = round(len(ds) / (time.time() - t1), 1)
            write_scores(df, out/f'scores_{m}.csv', **det.metadata())
            if m == 'translation': translation_figure(det, ds, df, out/f'translation_{root.name}.png')
        meta = json.loads((out/f'scores_{m}.csv').with_suffix('.json').read_text())
        rows += metric_rows(m, df, meta, info, a.n_boot)
        for r in rows[-(len(df.columns) - 2):]: print({k: r[k] for k in ('row', 'auc', 'auc_lo', 'auc_hi', 'minutes', 'iterations')}, flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out/'table.csv', index=False)
    md = table_markdown(table) + ''.join(f"\n{n}\n" for n in notes)
    atomic_write_text(out/'table.md', md)
    if a.results: write_results(table, Path(a.results), 'quality.py', argv)
    print(md)
    return 0

if __name__ == '__main__': sys.exit(main())
