"""GPU benchmark: scoring speed of the translation detector and the time of a whole-slide heatmap; prints a markdown table.

On CUDA (bf16 autocast, channels-last): the paper's GPU recipe (width 64, 4 residual blocks, 8 exemplar styles) scores
random patches at 256 and 512 px — every score (exemplar min/mean, own style, random styles, LPIPS on the recommended
translation, as `histo-i2i score` computes them) and the recommended score alone (closest exemplar: 1 - SSIM and LPIPS);
then a 100k x 100k synthetic slide (texture mode, written once into runs/bench/ and reused, as bench/tiling.py does) is
tiled at 256 px, every tissue patch is read by DataLoader workers (pinned memory) and scored on the GPU, and the heatmap
is drawn. Targets on an H100/H200: >= 1000 patches/s at 256 px, whole-slide heatmap < 60 s. The weights are untrained:
speed does not depend on them. Without CUDA it warns and runs tiny sizes on the CPU, so the script can be checked anywhere;
`--dry-run` runs the smallest sizes through the same path (bf16 autocast where the CPU has it, channels-last, a DataLoader
worker; add --compile for compiled networks, which takes minutes on a CPU) in well under 2 minutes: `make test` runs it.

    bash bench/gpu_setup.sh            # where fastai, lpips, openslide ... are missing: installs bench/out/wheels offline
    python bench/gpu.py [--sizes 256,512] [--slide-size 100000] [--workers 16] [--compile]
    python bench/gpu.py --dry-run      # on the CPU, tiny: checks the script end to end
"""
from __future__ import annotations
import argparse, os, sys, time, warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent)); sys.path.insert(0, str(HERE))
NEEDED = ('numpy', 'pandas', 'torch', 'torchvision', 'fastai', 'fastcore', 'fastprogress', 'lpips', 'openslide', 'tifffile',
          'defusedxml', 'skimage', 'scipy', 'matplotlib', 'pyarrow', 'PIL')


def check_imports():
    "Stop with one message listing every missing module (run bench/gpu_setup.sh first)."
    import importlib.util
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing: sys.exit(f"bench/gpu.py: missing modules {', '.join(missing)}: run `bash bench/gpu_setup.sh` (wheels in bench/out/wheels)")


def sync(device):
    import torch
    if device.type == 'cuda': torch.cuda.synchronize(device)


def detector(size, width, n_res, device, compile=False):
    "An untrained translation detector of the recipe, with exemplar styles, ready to score `size`-px patches."
    import torch
    from histo_i2i.translation import TranslationConfig
    from histo_i2i.methods.translation import TranslationDetector
    from histo_i2i.engine import compile_networks
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')            # LPIPS without ImageNet weights: the labelled random backbone
        cfg = TranslationConfig(size=size, width=width, d_width=width, n_res=n_res)
        det = TranslationDetector(cfg, device=device).resolve_settings()
        x = torch.rand(cfg.n_exemplars, 3, size, size) * 2 - 1
        det.finish_training(torch.utils.data.TensorDataset(x, torch.zeros(len(x), dtype=torch.long)))
        det.lpips_net
    if compile: compile_networks(det.networks().values())
    return det


def recommended_scores(det, x) -> dict:
    "The recommended score alone: 1 - SSIM and LPIPS against the closest exemplar's translation."
    from histo_i2i.similarity import ssim, lpips_distance
    best = det.recommended_translation(x)
    return {'ssim': 1 - ssim(x, best), 'lpips': lpips_distance(det.lpips_net, x, best)}


def patches_per_s(det, score, size, n, bs, device) -> float:
    "Patches scored per second by `score(det, x)` on batches of `bs` random patches already on the device."
    import torch
    x = (torch.rand(bs, 3, size, size, device=device) * 2 - 1)
    with torch.no_grad():
        score(det, det.prepare(x)); sync(device)      # warm-up (cuDNN choice, compilation)
        t0, done = time.perf_counter(), 0
        while done < n:
            out = score(det, det.prepare(x)); done += bs
        for v in out.values(): v.float().sum().item()
        sync(device)
    return done / (time.perf_counter() - t0)


def slide_heatmap_time(det, slide_path, patch_px, bs, workers, device, out_png, log=print) -> dict:
    "Seconds to tile the slide, to read and score every tissue patch (DataLoader workers, GPU scoring), and to draw the heatmap."
    import numpy as np, pandas as pd, torch
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from fastprogress.fastprogress import progress_bar
    from histo_i2i.tiling import tile_slide
    from histo_i2i.data import ManifestPatchDataset
    from histo_i2i.heatmap import plot_slide_heatmap
    t = {}
    t0 = time.perf_counter()
    df = tile_slide(str(slide_path), None, patch_px=patch_px)
    rows = df[df['tissue'] >= 0.9].reset_index(drop=True)
    t['tile'] = time.perf_counter() - t0
    ds = ManifestPatchDataset(rows, [0] * len(rows))
    dl = torch.utils.data.DataLoader(ds, batch_size=bs, num_workers=workers, pin_memory=device.type == 'cuda',
                                     prefetch_factor=4 if workers else None, persistent_workers=False)
    scores = {k: [] for k in det.score_names}
    t0 = time.perf_counter()
    with torch.no_grad():
        for x, _ in progress_bar(dl, leave=False):
            s = det.score_batch(det.prepare(x.to(device, non_blocking=True)))
            for k in det.score_names: scores[k].append(s[k].float())
        scores = {k: torch.cat(v).cpu().numpy() for k, v in scores.items()}
    sync(device)
    t['score'] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scored = rows.assign(**{f'score_{k}': v for k, v in scores.items()})
    ax = plot_slide_heatmap(slide_path, scored, 'ssim')
    ax.figure.savefig(out_png, dpi=60); plt.close(ax.figure)
    t['draw'] = time.perf_counter() - t0
    t['patches'] = len(rows)
    return t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sizes', default=None, help='patch sides to score (default 256,512 on CUDA; 64,96 on the CPU)')
    p.add_argument('--width', type=int, default=None, help='network width (default 64 on CUDA, 8 on the CPU)')
    p.add_argument('--n-res', type=int, default=None, help='residual blocks (default 4 on CUDA, 1 on the CPU)')
    p.add_argument('--bs', type=int, default=None, help='scoring batch (default 128 on CUDA, 8 on the CPU)')
    p.add_argument('--n', type=int, default=None, help='patches scored per measurement (default 4096 on CUDA, 16 on the CPU)')
    p.add_argument('--slide-size', type=int, default=None, help='side of the synthetic slide (default 100000 on CUDA, 2048 on the CPU; a 100k² slide takes long to make the first time)')
    p.add_argument('--slide-px', type=int, default=None, help='patch side the slide is scored at (default 256 on CUDA, 64 on the CPU)')
    p.add_argument('--workers', type=int, default=None, help='DataLoader workers reading slide patches (default: CPU cores - 1, at most 16)')
    p.add_argument('--compile', action='store_true', help='torch.compile the networks (falls back to eager with a warning)')
    p.add_argument('--out', default=str(HERE/'out'), help='folder for the heatmap PNG')
    p.add_argument('--dry-run', action='store_true', help='the smallest sizes on the CPU (1 DataLoader worker): checks the script end to end in CI')
    a = p.parse_args(argv)
    if a.dry_run:     # compiling on the CPU takes minutes (tests/test_gpu_path.py checks the compiled path and its fallback)
        a.sizes, a.width, a.n_res, a.bs, a.n = a.sizes or '32', a.width or 8, a.n_res or 1, a.bs or 8, a.n or 8
        a.slide_size, a.slide_px, a.workers = a.slide_size or 512, a.slide_px or 32, 1 if a.workers is None else a.workers
    check_imports()
    import torch
    from histo_i2i.core import repo_root
    from histo_i2i.detector import bf16_supported
    from tiling import synthetic
    cuda = torch.cuda.is_available() and not a.dry_run
    device = torch.device('cuda') if cuda else torch.device('cpu')
    if not cuda and not a.dry_run: warnings.warn("no CUDA device: tiny CPU sizes, for checking the script only; the numbers say nothing about a GPU", stacklevel=1)
    sizes = [int(s) for s in a.sizes.split(',')] if a.sizes else ([256, 512] if cuda else [64, 96])
    width, n_res = a.width or (64 if cuda else 8), a.n_res or (4 if cuda else 1)
    bs, n = a.bs or (128 if cuda else 8), a.n or (4096 if cuda else 8)
    slide_size, slide_px = a.slide_size or (100_000 if cuda else 2048), a.slide_px or (256 if cuda else 64)
    workers = a.workers if a.workers is not None else max(0, min(16, (os.cpu_count() or 1) - 1))
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    prec = ('bf16 autocast' if bf16_supported(device) else 'float32') + ', channels-last'
    print(f"translation detector on {name} ({prec}{', compiled' if a.compile else ''}); width {width}, {n_res} residual blocks, "
          f"8 exemplar styles, scoring batch {bs}; torch {torch.__version__}\n", flush=True)
    every = lambda det, x: det.score_batch(x)
    rows = []
    for s in sizes:
        det = detector(s, width, n_res, device, a.compile)
        for what, fn in (('every score', every), ('recommended score only', recommended_scores)):
            try: rows.append((f"score {s} px, {what}", f"{patches_per_s(det, fn, s, n, bs, device):.1f} patches/s"))
            except torch.cuda.OutOfMemoryError: rows.append((f"score {s} px, {what}", f"out of memory at batch {bs}")); torch.cuda.empty_cache()
            print(f"| {rows[-1][0]} | {rows[-1][1]} |", flush=True)
        del det
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    slide = synthetic(repo_root()/'runs'/'bench'/f'synthetic_{slide_size}.tif', slide_size)
    made = time.perf_counter() - t0
    det = detector(slide_px, width, n_res, device, a.compile)
    t = slide_heatmap_time(det, slide, slide_px, bs, workers, device, out/f'heatmap_{slide_size}.png')
    total = t['tile'] + t['score'] + t['draw']
    k = f"{slide_size / 1000:g}"
    rows += [(f"heatmap {k}k² slide, {slide_px} px: tile (s)", f"{t['tile']:.1f}"),
             (f"heatmap {k}k² slide: read + score {t['patches']} tissue patches ({workers} workers) (s)",
              f"{t['score']:.1f} ({t['patches'] / t['score']:.0f} patches/s)"),
             (f"heatmap {k}k² slide: draw (s)", f"{t['draw']:.1f}"),
             (f"**heatmap {k}k² slide: total (s)**", f"**{total:.1f}**")]
    if slide_size < 100_000:    # tissue patches grow with the area: what the same rates give on a 100k² slide
        scale = (100_000 / slide_size) ** 2
        rows.append(("heatmap 100k² slide projected from these rates (s)", f"{(t['tile'] + t['score']) * scale + t['draw']:.0f}"))
    print(f"\n(slide ready in {made:.0f} s: {'made' if made > 5 else 'reused'} {slide})\n")
    print('| measurement | result |\n|---|---|')
    for r in rows: print(f"| {r[0]} | {r[1]} |")
    if cuda:
        r256 = [r for r in rows if r[0].startswith('score 256 px, every')]
        print(f"\ntargets: >= 1000 patches/s at 256 px ({r256[0][1] if r256 else 'not measured'}), whole-slide heatmap < 60 s ({total:.1f} s)")


if __name__ == '__main__': main()
