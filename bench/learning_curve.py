"""Learning curve of a trained method on a real patch data set: AUC on a split after each of several budgets.

One run folder is trained through the budgets in turn (a rerun resumes it and skips the budgets already in `OUT/curve.csv`) (each budget is the run's total: a larger one resumes and extends
the run, which with the constant learning rate of the 40x recipe trains as one longer run would), and after each budget
the split is scored with every score of the method. Budgets are given in CPU-minutes (`--minutes 5,15,30,60,120`) or in
iterations (`--iters 250,500,1000`), the latter when the machine is shared and wall-clock minutes would not mean the same
from one run to the next. Writes `OUT/curve.csv` (budget, iterations, training minutes, AUC with its bootstrap interval
per score), `OUT/curve.md` and `OUT/curve.png`, and with `--results FILE` also the same CSV to FILE with a `.json`
beside it holding the command, date and machine (for `bench/results/`); `--figure PNG` draws the curve there too. A rerun
whose budgets are all scored only redraws.

    python bench/learning_curve.py --profile c16-40x --data ../shared/data/c16-40x --minutes 5,15,30,60,120 --out runs/curve40
    python bench/learning_curve.py --profile c16-40x --data ../shared/data/c16-40x --iters 250,500,1000,2000 --out runs/curve40i \\
        --results bench/results/c16-40x_learning_curve.csv
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from quality import method_settings, metric_rows, markdown, write_results, TRAINED
from histo_i2i.core import atomic_write_text
from histo_i2i.data import pcam_folder
from histo_i2i.detector import METHODS, score_dataset
from histo_i2i.reproduce import load_profile, expand_placeholders

def budgets(text:str, cast) -> list:
    "'5,15,30' -> [5, 15, 30], increasing."
    out = [cast(v) for v in text.split(',') if v.strip()]
    if not out or any(b <= a for a, b in zip(out, out[1:])) or out[0] <= 0: raise SystemExit(f"budgets must increase and be positive, got {text!r}")
    return out

def plot(curve:pd.DataFrame, path, x:str, floors:pd.DataFrame|None=None):
    import matplotlib, matplotlib.ticker; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for score, d in curve.groupby('score', sort=False):
        ax.errorbar(d[x], d.auc, yerr=[d.auc - d.auc_lo, d.auc_hi - d.auc], marker='o', capsize=2, label=score)
    for _, f in (floors if floors is not None else pd.DataFrame()).iterrows():
        if f.method in ('blur', 'knn_floor'): ax.axhline(f.auc, ls='--', lw=1, color='grey'); ax.annotate(f.row, (curve[x].min(), f.auc), fontsize=6, va='bottom', color='grey')
    ax.set_xscale('log'); ax.set_xticks(sorted(curve[x].unique())); ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter()); ax.minorticks_off()
    ax.set_xlabel('training ' + ('CPU-minutes' if x == 'budget_minutes' else 'iterations')); ax.set_ylabel('AUC')
    ax.legend(fontsize=6, loc='lower right'); fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--profile', default='c16-40x')
    p.add_argument('--data', default=None, help="PCam-layout folder (default: the profile's data)")
    p.add_argument('--split', default='valid')
    p.add_argument('--method', default='translation', help='a trained method: ' + ', '.join(TRAINED))
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument('--minutes', help='comma-separated total budgets in minutes')
    g.add_argument('--iters', help='comma-separated total budgets in iterations')
    p.add_argument('--set', dest='sets', action='append', default=[], metavar='FIELD=VALUE', help="one field of the method's configuration")
    p.add_argument('--limit', type=int, default=None, help='balanced subset of the scored split')
    p.add_argument('--n-boot', type=int, default=1000)
    p.add_argument('--device', default=None)
    p.add_argument('--out', default='runs/bench/learning_curve')
    p.add_argument('--results', default=None, help='also write the curve to this CSV, with the command and date beside it')
    p.add_argument('--floors', default=None, help='a bench/quality.py table (CSV) whose blur and untrained-feature k-NN floors are drawn as lines')
    p.add_argument('--figure', default=None, help="also draw the curve to this PNG (the front page's is nbs/images/learning_curve_c16-40x.png)")
    a = p.parse_args(argv)
    if a.method not in TRAINED: raise SystemExit(f"--method {a.method!r} trains nothing; one of {', '.join(TRAINED)}")
    profile = load_profile(a.profile)
    root = Path(a.data or expand_placeholders(profile['parameters']['data'], a.out))
    if not root.is_dir(): raise SystemExit(f"{root}: no such folder (--data)")
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    scored, train = pcam_folder(root, a.split, labels=(0, 1), limit=a.limit), pcam_folder(root, 'train', labels=(0,))
    sets = {a.method: dict(s.split('=', 1) for s in a.sets)}
    x, steps = ('budget_minutes', budgets(a.minutes, float)) if a.minutes else ('budget_iters', budgets(a.iters, int))
    done = pd.read_csv(out/'curve.csv') if (out/'curve.csv').is_file() else pd.DataFrame(columns=[x])
    rows = [r for r in done.to_dict('records') if x in r and r[x] in steps]      # a rerun keeps the budgets already scored
    trained_s = max([r['minutes'] * 60 for r in rows], default=0.)
    for b in steps:
        if any(r[x] == b for r in rows): print(f"{x} {b}: scored already ({out/'curve.csv'})", flush=True); continue
        kw = method_settings(a.method, profile, sets, b if x == 'budget_minutes' else 0., None if x == 'budget_minutes' else b)
        det = METHODS[a.method](device=a.device, **kw)
        t0 = time.time(); det.fit(train, run_dir=out/a.method); trained_s += time.time() - t0
        df = score_dataset(det, scored)
        info = dict(minutes=round(trained_s / 60, 2), iterations=int(det.step))
        for r in metric_rows(a.method, df, det.metadata(), info, a.n_boot):
            rows.append({x: b, **r}); print({k: rows[-1][k] for k in (x, 'score', 'auc', 'iterations', 'minutes')}, flush=True)
        curve = pd.DataFrame(rows)
        curve.to_csv(out/'curve.csv', index=False)
        if a.results: write_results(curve, Path(a.results), 'learning_curve.py', argv)     # after every budget: a stopped curve keeps its points
    curve = pd.DataFrame(rows)
    atomic_write_text(out/'curve.md', markdown(curve[[x, 'score', 'iterations', 'minutes', 'auc', 'auc_lo', 'auc_hi', 'ap']]))
    floors = pd.read_csv(a.floors) if a.floors else None
    for path in (out/'curve.png', *([Path(a.figure)] if a.figure else [])): plot(curve, path, x, floors)
    print(markdown(curve[[x, 'score', 'iterations', 'minutes', 'auc', 'auc_lo', 'auc_hi']]))
    return 0

if __name__ == '__main__': sys.exit(main())
