"""AUC of the recommended translation scores with the full search for the closest exemplar against the cheap choices.

The recommended `ssim` and `lpips` scores of a translation model compare a patch with its translation by the closest
healthy exemplar style. The full search (`exemplar_search='full'`, the default) decodes the patch with every exemplar;
'style' decodes it once, with the exemplar whose style code is nearest the patch's own, and 'lowres' picks the exemplar
of least 1 - SSIM at half resolution. A cheap choice may become the default only where its AUC stays within 0.01 of the
full search on PCam valid and on 40x valid. Prints a markdown table (AUC with its bootstrap interval, and the difference
to the full search), and the scoring time of each choice.

    python bench/exemplar_search.py runs/pcam/02_translation/translation --data ../shared/data/pcam-subset --split valid
    python bench/exemplar_search.py RUN --data ../shared/data/c16-40x --split valid --searches full,style,lowres
"""
from __future__ import annotations
import argparse, dataclasses, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from histo_i2i.data import patch_dataset
from histo_i2i.detector import load_detector, score_dataset
from histo_i2i.metrics import detection_metrics
from histo_i2i.translation import EXEMPLAR_SEARCHES


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run', help='a translation run folder (or checkpoint file)')
    p.add_argument('--data', required=True, help='PCam-layout folder, PCam HDF5 folder or manifest')
    p.add_argument('--split', default='valid')
    p.add_argument('--limit', type=int, default=None, help='score at most this many patches (balanced over the classes)')
    p.add_argument('--searches', default='full,style,lowres', help=f"comma-separated, from {', '.join(EXEMPLAR_SEARCHES)}")
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--device', default=None)
    p.add_argument('--n-boot', type=int, default=1000)
    a = p.parse_args(argv)
    det = load_detector(a.run, device=a.device)
    if det.method != 'translation': p.error(f"{a.run} holds a {det.method} model, not a translation model")
    if det.config.score_style != 'exemplar' or det.config.exemplar_aggregate != 'min':
        p.error("the model's recommended score is not the closest exemplar's (score_style='exemplar', exemplar_aggregate='min')")
    ds = patch_dataset(a.data, split=a.split, labels=(0, 1), limit=a.limit)
    base = det.config
    print(f"{a.run} (step {det.step}); {len(ds)} patches of {a.data} {a.split}\n", flush=True)
    rows, full = [], {}
    for search in a.searches.split(','):
        det.config = dataclasses.replace(base, exemplar_search=search)
        det.score_names = det.score_names_for(dataclasses.asdict(det.config))   # a cheap search scores the closest exemplar under its own name
        t0 = time.perf_counter()
        df = score_dataset(det, ds, bs=a.batch_size, progress=False)
        dt = time.perf_counter() - t0
        if 'ssim' not in full:     # a cheap search also scores the full search's closest exemplar, as ssim_exemplar_min
            full['ssim'] = detection_metrics(df.label.values, df['score_ssim_exemplar_min' if 'score_ssim_exemplar_min' in df else 'score_ssim'].values, n_boot=0)['auc']
        for score in ('ssim', 'lpips'):
            m = detection_metrics(df.label.values, df[f'score_{score}'].values, n_boot=a.n_boot)
            if search == 'full': full[score] = m['auc']
            diff = m['auc'] - full[score] if score in full else float('nan')
            rows.append(f"| {search} | {score} | {m['auc']:.4f} [{m['auc_lo']:.3f}, {m['auc_hi']:.3f}] | {diff:+.4f} | {dt:.0f} |")
        print('\n'.join(rows[-2:]), flush=True)
    print('\n| exemplar search | score | AUC [95% interval] | AUC - full search | scoring (s) |\n|---|---|---|---|---|')
    print('\n'.join(rows))
    return 0


if __name__ == '__main__': sys.exit(main())
