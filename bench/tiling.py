"""Tiling benchmark: prints a markdown table.

On a synthetic 100k x 100k slide (generated once, in texture mode, into runs/bench/ and reused) and on the real
CMU-1-Small-Region.svs: seconds for mask + coordinates + fractions; patch reading rate at 256 and 512 px through
the library vs a plain `openslide.read_region` loop over the same coordinates; 2 dask workers vs 1 for
`batch.tile_slides` over several slides (best of two runs; the sum of the tasks' own seconds shows how much
slower each slide gets when two run at once, as against time lost between tasks).

    OMP_NUM_THREADS=1 .venv/bin/python bench/tiling.py [--size 100000] [--n-patches 300] [--batch-slides 6]
"""
from __future__ import annotations
import argparse, os, sys, time, shutil, tempfile
from pathlib import Path
import numpy as np

os.environ.setdefault('OMP_NUM_THREADS', '1')
from histo_i2i.core import repo_root, shared_data, skip_reason
from histo_i2i.synth import make_synthetic_slide
from histo_i2i.slide import open_slide
from histo_i2i.tiling import tile_slide, read_patch


def synthetic(path, size, mpp=0.25, seed=0, log=print):
    "The benchmark slide (made once, reused)."
    path = Path(path)
    if not path.exists():
        t0 = time.time()
        make_synthetic_slide(path, size, size, seed=seed, mpp=mpp, mode='texture', progress=True)
        log(f"made {path} ({size} x {size}, texture mode) in {time.time() - t0:.0f} s")
    return path


def time_tiling(slide, annotation=None, repeats=2, **kw):
    "Best-of seconds for tile_slide (mask + coordinates + fractions), and its manifest."
    best, df = None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        df = tile_slide(str(slide), str(annotation) if annotation else None, **kw)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best, df


def read_rates(slide, df, patch_px, n, seed=0, repeats=5):
    "(library patches/s, plain openslide patches/s) over the same n level-0 coordinates; best of interleaved rounds."
    import openslide
    rng = np.random.default_rng(seed)
    rows = df.iloc[rng.choice(len(df), size=n, replace=len(df) < n)]   # small slides: coordinates repeat
    lib_best = plain_best = 0.0
    with open_slide(slide) as s:
        osr = openslide.OpenSlide(str(slide))
        try:
            for _ in range(repeats):
                t0 = time.perf_counter()
                for r in rows.itertuples(index=False):
                    a = np.asarray(osr.read_region((int(r.x), int(r.y)), int(r.level), (int(r.read_px), int(r.read_px))).convert('RGB'))
                plain_best = max(plain_best, len(rows) / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                for r in rows.itertuples(index=False): a = read_patch(r, s)
                lib_best = max(lib_best, len(rows) / (time.perf_counter() - t0))
        finally: osr.close()
    return lib_best, plain_best


def dask_speedup(slides, out_root, repeats=2, **kw):
    """Best-of seconds of batch.tile_slides over `slides` with 1 and 2 single-threaded workers, and the summed seconds of
    their tasks (the clusters are started beforehand, and every worker tiles one slide first, so that start-up and
    imports are not counted)."""
    from distributed import Client
    from histo_i2i.batch import tile_slides, local_cluster
    times = {}
    for n in (1, 2):
        with local_cluster(n_workers=n) as cluster, Client(cluster) as client:
            client.run(tile_slide, str(slides[0]), **kw)                       # warm every worker, not only the first
            for r in range(repeats):
                out = Path(out_root)/f'workers{n}_{r}'
                t0 = time.perf_counter()
                rep = tile_slides(slides, out, scheduler=cluster.scheduler_address, progress=False, **kw)
                wall = time.perf_counter() - t0
                assert (rep.status == 'done').all(), rep
                if n not in times or wall < times[n][0]: times[n] = (wall, float(rep.seconds.sum()))
                shutil.rmtree(out, ignore_errors=True)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--size', type=int, default=100_000, help='side of the synthetic slide (level-0 px)')
    ap.add_argument('--n-patches', type=int, default=300, help='patches per reading-rate measurement')
    ap.add_argument('--batch-slides', type=int, default=6, help='slides in the dask comparison')
    ap.add_argument('--work', default=None, help='folder for generated slides (default runs/bench)')
    a = ap.parse_args(argv)
    work = Path(a.work or (repo_root() or Path.cwd())/'runs'/'bench')
    work.mkdir(parents=True, exist_ok=True)
    log = lambda *x: print(*x, file=sys.stderr, flush=True)

    rows, load0 = [], os.getloadavg()[0]
    syn = synthetic(work/f'synthetic_{a.size}.tif', a.size, log=log)
    slides = [('synthetic %dk² (mpp 0.25)' % (a.size // 1000), syn, syn.with_suffix('.xml'))]
    cmu = shared_data('slides', 'CMU-1-Small-Region.svs')
    if cmu is None: log('CMU-1-Small-Region:', skip_reason('slides', 'CMU-1-Small-Region.svs'))
    else: slides.append(('CMU-1-Small-Region (2220x2967)', cmu, None))
    for name, path, xml in slides:
        log('tiling', name)
        secs, df = time_tiling(path, xml if xml and Path(xml).exists() else None, patch_px=256)
        row = dict(slide=name, tiling_s=secs, n_patches=len(df))
        for px in (256, 512):
            d = df if px == 256 else time_tiling(path, None, repeats=1, patch_px=512)[1]
            d = d[d.tissue > 0.5] if (d.tissue > 0.5).sum() > 20 else d
            lib, plain = read_rates(path, d, px, a.n_patches)
            row[f'lib_{px}'], row[f'plain_{px}'] = lib, plain
        rows.append(row)

    # the dask comparison: several slides of CAMELYON size (links to the benchmark slide under other names)
    bdir = work/'batch'; bdir.mkdir(exist_ok=True)
    bslides = []
    for k in range(a.batch_slides):
        link = bdir/f'slide_{k}.tif'
        if not link.exists(): link.symlink_to(syn.resolve())
        bslides.append(link)
    log('dask: 1 vs 2 workers over', len(bslides), 'slides')
    with tempfile.TemporaryDirectory() as tmp: times = dask_speedup(bslides, tmp, patch_px=256)

    print(f"| slide | mask + coordinates + fractions (s) | patches | read 256 px: library / openslide (patches/s) | ratio | read 512 px: library / openslide (patches/s) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['slide']} | {r['tiling_s']:.2f} | {r['n_patches']} | {r['lib_256']:.0f} / {r['plain_256']:.0f} | "
              f"{r['lib_256'] / r['plain_256']:.2f}x | {r['lib_512']:.0f} / {r['plain_512']:.0f} | {r['lib_512'] / r['plain_512']:.2f}x |")
    print()
    print(f"| tile_slides over {a.batch_slides} synthetic {a.size // 1000}k² slides, patch 256 | seconds | sum of task seconds | speed-up |")
    print("|---|---|---|---|")
    for n in (1, 2):
        print(f"| {n} worker{'s' if n > 1 else ''} (1 thread each) | {times[n][0]:.1f} | {times[n][1]:.1f} | {times[1][0] / times[n][0]:.2f}x |")
    print(f"\ncores: {os.cpu_count()}; load average during the run: {load0:.1f} -> {os.getloadavg()[0]:.1f}; "
          "goals: tiling < 10 s for 100k², reading >= 0.8x, 2 workers >= 1.7x")


if __name__ == '__main__': main()
