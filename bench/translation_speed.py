"""Speed of the translation model: training iterations/s and scoring patches/s.

On CPU at 64, 96 and 128 px; on CUDA (when available) also at 256 and 512 px with bf16 autocast and
channels-last tensors. One training iteration = one discriminator step + one generator step on
2 x batch-size patches; scoring = translation + 1 - SSIM + LPIPS. Prints a markdown table.

    OMP_NUM_THREADS=2 python bench/translation_speed.py                 # CPU, 64/96/128 px
    python bench/translation_speed.py --device cuda                     # GPU, 64..512 px, bf16
"""
from __future__ import annotations
import argparse, sys, time
import torch
from histo_i2i.core import default_device, seed_everything
from histo_i2i.translation import TranslationConfig
from histo_i2i.translation_detector import TranslationDetector

def _sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def speeds(cfg, device, steps:int, score_n:int, bs:int) -> tuple[float, float]:
    "(training iterations per second through the engine, scoring patches per second with every score) on random patches."
    x = torch.rand(max(64, 4 * cfg.batch_size), 3, cfg.size, cfg.size) * 2 - 1
    det = TranslationDetector(cfg, device=device).fit(x, iters=1, progress=False)   # warm-up; keeps exemplar styles
    _sync(device); t = time.perf_counter()
    det.fit(x, iters=1 + steps, progress=False)
    _sync(device); train = steps / (time.perf_counter() - t)
    det.score(x[:min(bs, score_n)], bs=bs)   # warm-up (and LPIPS construction)
    xs = torch.rand(score_n, 3, cfg.size, cfg.size) * 2 - 1
    _sync(device); t = time.perf_counter()
    det.score(xs, bs=bs)
    _sync(device)
    return train, score_n / (time.perf_counter() - t)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default=None)
    p.add_argument('--sizes', default=None, help='comma-separated sizes (default: 64,96,128 on CPU; +256,512 on CUDA)')
    p.add_argument('--width', type=int, default=None, help='model width (default 16 on CPU, 64 on CUDA)')
    p.add_argument('--n-res', type=int, default=None, help='residual blocks (default 2 on CPU, 4 on CUDA)')
    p.add_argument('--batch-size', type=int, default=None, help='per view (default 4 on CPU, 8 on CUDA)')
    p.add_argument('--steps', type=int, default=None, help='timed training steps (default 3 on CPU, 20 on CUDA)')
    p.add_argument('--score-n', type=int, default=None, help='patches scored (default 32 on CPU, 512 on CUDA)')
    p.add_argument('--lpips-backbone', default='')
    a = p.parse_args(argv)
    device = default_device(a.device)
    cuda = device.type == 'cuda'
    sizes = [int(s) for s in a.sizes.split(',')] if a.sizes else ([64, 96, 128, 256, 512] if cuda else [64, 96, 128])
    width = a.width or (64 if cuda else 16); n_res = a.n_res or (4 if cuda else 2)
    bs = a.batch_size or (8 if cuda else 4); steps = a.steps or (20 if cuda else 3); score_n = a.score_n or (512 if cuda else 32)
    seed_everything(0)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    prec = 'bf16 autocast' if cuda and torch.cuda.is_bf16_supported() else 'float32'
    print(f"translation model speed on {name} ({prec}); width {width}, {n_res} res blocks, batch {bs}x2 per iteration\n")
    print('| size (px) | train it/s | train patches/s | score patches/s |')
    print('|---|---|---|---|')
    for s in sizes:
        cfg = TranslationConfig(size=s, width=width, d_width=width, n_res=n_res, batch_size=bs, lpips_backbone=a.lpips_backbone)
        try:
            tr, sc = speeds(cfg, device, steps, score_n, bs=64 if cuda else 16)
            print(f"| {s} | {tr:.3f} | {tr*2*bs:.1f} | {sc:.1f} |", flush=True)
        except torch.OutOfMemoryError:
            print(f"| {s} | out of memory | | |", flush=True)
            if cuda: torch.cuda.empty_cache()
    return 0

if __name__ == '__main__': sys.exit(main())
