"""Training speed per method x crop size x precision: iterations/s through the engine, and scoring patches/s.

Each configuration trains a fresh model on random patches: one warm-up iteration (graph and kernel choices, LPIPS
construction), then `--iters` timed iterations; then it scores `--score-n` patches once to warm up and once timed. fp32 is
float32 with the default memory layout; bf16 is bf16 autocast with channels-last networks and batches (the engine's
`mixed_precision` and `channels_last`), on a CUDA device or a CPU with AVX-512 BF16 / AMX (elsewhere bf16 is skipped).
Prints a markdown table and writes it, with the command, date and machine, to bench/results/train_speed.{csv,md}.
Measure alone on the machine: the numbers are only comparable between runs that had it to themselves.

    OMP_NUM_THREADS=2 python bench/train_speed.py --methods translation --sizes 64,128 --precisions fp32,bf16 --iters 20
    python bench/train_speed.py --methods translation,ae,fanogan,stylegan2,supervised,ssl --sizes 64 --iters 10
"""
from __future__ import annotations
import argparse, dataclasses, datetime, os, platform, shlex, sys, time, warnings
from pathlib import Path
import pandas as pd, torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from histo_i2i.core import atomic_path, default_device, seed_everything
from histo_i2i.detector import METHODS, bf16_supported

PRECISIONS = {'fp32': dict(mixed_precision=False, channels_last=False), 'bf16': dict(mixed_precision=True, channels_last=True)}


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def detector(method:str, device, **settings):
    "A fresh `method` detector with those of `settings` its configuration has (the random LPIPS backbone: speed does not depend on it)."
    cls = METHODS[method]
    names = {f.name for f in dataclasses.fields(cls.config_class)}
    kw = {k: v for k, v in {**settings, 'lpips_backbone': 'random', 'checkpoint_every': 10**6}.items() if k in names}
    return cls(cls.config_class(**kw), device=device)


def speeds(method:str, size:int, precision:str, device, iters:int, score_n:int, **settings) -> dict:
    "Training iterations/s (after one warm-up iteration) and scoring patches/s (after a warm-up pass) of one configuration."
    seed_everything(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        det = detector(method, device, size=size, **PRECISIONS[precision], **settings)
        n = max(32, 4 * det.config.batch_size * getattr(det, 'batch_chunks', 1))
        x = torch.rand(n, 3, size, size) * 2 - 1
        train = torch.utils.data.TensorDataset(x, torch.arange(n) % 2)      # both classes: the supervised method needs them
        det.fit(train, iters=1, progress=False)
        sync(device); t = time.perf_counter()
        det.fit(train, iters=1 + iters, progress=False)
        sync(device); train_s = time.perf_counter() - t
        xs = x[:score_n] if score_n <= n else torch.rand(score_n, 3, size, size) * 2 - 1
        det.score(xs[:min(4, len(xs))])
        sync(device); t = time.perf_counter()
        det.score(xs)
        sync(device); score_s = time.perf_counter() - t
    return {'it_per_s': iters / train_s, 'patches_per_s_train': iters * n_per_iter(det) / train_s, 'score_patches_per_s': len(xs) / score_s}


def n_per_iter(det) -> int: return det.config.batch_size * getattr(det, 'batch_chunks', 1)


def machine(device) -> str:
    if device.type == 'cuda': return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
            f"bf16 native: {bf16_supported(device)}, torch {torch.__version__}")


def markdown(df:pd.DataFrame) -> str:
    cols = ['method', 'size', 'precision', 'it_per_s', 'patches_per_s_train', 'score_patches_per_s', 'speed-up']
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    for r in df.to_dict('records'):
        lines.append('| ' + ' | '.join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--methods', default='translation', help='comma-separated methods (translation, ae, fanogan, stylegan2, supervised, ssl)')
    p.add_argument('--sizes', default='64,128', help='comma-separated crop sizes (px)')
    p.add_argument('--precisions', default='fp32,bf16', help='comma-separated: fp32, bf16')
    p.add_argument('--iters', type=int, default=20, help='timed training iterations per configuration')
    p.add_argument('--width', type=int, default=16, help='network width')
    p.add_argument('--batch-size', type=int, default=4, help='batch size (per view for the translation model)')
    p.add_argument('--score-n', type=int, default=16, help='patches scored (timed) per configuration')
    p.add_argument('--device', default=None)
    p.add_argument('--out', default=str(HERE/'results'/'train_speed'), help='writes OUT.csv and OUT.md')
    a = p.parse_args(argv)
    device = default_device(a.device)
    methods, sizes, precs = a.methods.split(','), [int(s) for s in a.sizes.split(',')], a.precisions.split(',')
    bad = [q for q in precs if q not in PRECISIONS]
    if bad: p.error(f"unknown precision {bad[0]!r}: use fp32, bf16")
    if 'bf16' in precs and not bf16_supported(device):
        print(f"bf16 skipped: {device} does not compute bf16 natively"); precs = [q for q in precs if q != 'bf16']
    where = machine(device)
    print(f"{where}; width {a.width}, batch {a.batch_size}, {a.iters} timed iterations\n", flush=True)
    rows = []
    for m in methods:
        for s in sizes:
            for q in precs:
                row = dict(method=m, size=s, precision=q)
                try: row.update(speeds(m, s, q, device, a.iters, a.score_n, width=a.width, batch_size=a.batch_size))
                except Exception as e:        # a size a method cannot take (e.g. 4·2^k only), or out of memory
                    row.update(it_per_s=float('nan'), patches_per_s_train=float('nan'), score_patches_per_s=float('nan'),
                               error=f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}")
                rows.append(row)
                print(f"{m} {s} px {q}: " + (f"{row['it_per_s']:.3f} it/s, {row['score_patches_per_s']:.1f} scored patches/s"
                                             if 'error' not in row else row['error']), flush=True)
    df = pd.DataFrame(rows)
    if 'error' not in df: df['error'] = ''
    base = df[df.precision == 'fp32'].set_index(['method', 'size'])['it_per_s']
    df['speed-up'] = [r.it_per_s / base.get((r.method, r.size), float('nan')) for r in df.itertuples()]
    cmd = 'python bench/train_speed.py ' + ' '.join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    head = (f"command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} {cmd}`  \n"
            f"date: {datetime.datetime.now().isoformat(timespec='seconds')}  \nmachine: {where}  \n"
            f"settings: width {a.width}, batch {a.batch_size}, {a.iters} timed iterations after 1 warm-up; "
            "fp32 = float32, default layout; bf16 = bf16 autocast + channels-last; speed-up = it/s over fp32\n")
    table = markdown(df)
    print('\n' + table)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out.with_suffix('.csv')) as tmp: df.assign(command=cmd, machine=where).to_csv(tmp, index=False)
    with atomic_path(out.with_suffix('.md')) as tmp: Path(tmp).write_text(f"# Training speed\n\n{head}\n{table}\n")
    print(f"\nwrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")
    return 0


if __name__ == '__main__': sys.exit(main())
