"""The code path CUDA takes, run on the CPU at tiny sizes so that dtype and layout mistakes fail here: bf16 autocast
(where the CPU computes bf16 natively), channels-last networks and batches, compiled networks with their eager fallback,
DataLoader worker processes, and scoring under the same precision. Two-process training (DDP over gloo) is
tests/test_ddp.py, which checks the same precision and layout in each process."""
import functools, warnings
import numpy as np, pytest, torch
from histo_i2i.detector import bf16_supported
from histo_i2i.engine import read_history
from histo_i2i.synth import toy_tissue
from histo_i2i.translation import TranslationConfig
from histo_i2i.methods.translation import TranslationDetector

TINY = dict(size=32, width=8, n_res=1, mlp_dim=16, style_dim=4, d_width=8, d_scales=2, batch_size=2, n_exemplars=2,
            n_styles=1, lpips_backbone='random', checkpoint_every=2)


def watch_convs(det) -> list:
    "Record (output dtype, input channels-last) of every convolution the detector's networks run."
    seen = []
    def hook(m, i, o): seen.append((o.dtype, i[0].is_contiguous(memory_format=torch.channels_last)))
    for net in det.networks().values():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d): m.register_forward_hook(hook)
    return seen


def train(tmp_path, **kw):
    det = TranslationDetector(TranslationConfig(**{**TINY, **kw}), device='cpu')
    seen = watch_convs(det)
    det.fit(toy_tissue(8), iters=2, run_dir=tmp_path/'run', progress=False)
    return det, seen


@pytest.fixture
def eager_compile(monkeypatch):
    "torch.compile with the 'eager' backend: graph capture as on CUDA, without minutes of C++ code generation on a CPU."
    monkeypatch.setattr(torch, 'compile', functools.partial(torch.compile, backend='eager'))


def test_training_runs_bf16_channels_last_with_workers(tmp_path):
    det, seen = train(tmp_path, mixed_precision=True, channels_last=True, workers=2)
    hist = read_history(tmp_path/'run')
    assert [h['step'] for h in hist] == [1, 2] and all(np.isfinite(v) for h in hist for v in h.values())
    assert seen[0][1]                                              # the batch reaches the networks channels-last
    want = torch.bfloat16 if bf16_supported('cpu') else torch.float32
    assert want in {d for d, _ in seen}                            # (the exemplar styles kept at the end are computed in float32)
    seen.clear()
    s = det.score(toy_tissue(3, seed=1))                           # scoring under the same precision: float32 scores
    assert {d for d, _ in seen} == {want}
    assert all(np.isfinite(v).all() and v.dtype == np.float32 for v in s.values())


def test_compiled_training_and_scoring(tmp_path, eager_compile):
    det = TranslationDetector(TranslationConfig(**TINY, compile=True, mixed_precision=True, channels_last=True), device='cpu')
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        det.fit(toy_tissue(8), iters=1, run_dir=tmp_path/'run', progress=False)
    assert not any('torch.compile failed' in str(x.message) for x in w)
    assert det.step == 1 and np.isfinite(det.score(toy_tissue(2, seed=1))['ssim']).all()


def test_float32_when_mixed_precision_is_off(tmp_path):
    det, seen = train(tmp_path, mixed_precision=False, channels_last=False)
    assert {d for d, _ in seen} == {torch.float32} and not seen[0][1]


def test_compile_failure_falls_back_to_eager_with_a_warning(tmp_path, monkeypatch):
    def broken(fn, **kw):
        def run(*a, **k): raise RuntimeError("no compiler for this backend")
        return run
    monkeypatch.setattr(torch, 'compile', broken)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        det, _ = train(tmp_path, compile=True, workers=0)
    assert any('torch.compile failed' in str(x.message) for x in w)
    assert det.step == 2 and len(read_history(tmp_path/'run')) == 2
