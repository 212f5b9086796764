"""End-to-end checks of the translation detector on the synthetic demo dataset (fast: < 60 s on one core)."""
import numpy as np, pandas as pd, pytest, torch
from histo_i2i.batch import make_demo_dataset
from histo_i2i.data import pcam_folder
from histo_i2i.detector import load_detector, score_dataset
from histo_i2i.translation import TranslationConfig
from histo_i2i.methods.translation import TranslationDetector

TINY = dict(size=32, width=8, n_res=1, mlp_dim=16, style_dim=4, d_width=8, d_scales=1, batch_size=4, lr=2e-3,
            checkpoint_every=10, n_exemplars=4, n_styles=2, lpips_backbone='random')

@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = make_demo_dataset(tmp_path_factory.mktemp('demo'), n_slides=2, slide_px=1024, patch_px=32, progress=False)
    return pcam_folder(root, 'train', labels=(0,)), pcam_folder(root, 'valid')

@pytest.fixture(scope='module')
def fitted(demo, tmp_path_factory):
    run = tmp_path_factory.mktemp('run')/'translation'
    det = TranslationDetector(TranslationConfig(**TINY), device='cpu').fit(demo[0], iters=20, run_dir=run, progress=False)
    return det, run

def test_scores_of_a_dataset(demo, fitted):
    "Scoring a held-out synthetic split: one row per patch, the recommended score first, every score finite."
    det, run = fitted
    valid = demo[1]
    df = score_dataset(det, valid, progress=False)
    assert list(df.columns) == ['path', 'label'] + [f'score_{k}' for k in det.score_names]
    assert det.score_names[:2] == ('ssim', 'lpips')      # the recommended score first
    assert len(df) == len(valid) and (df.label == 1).sum() > 0 and (df.label == 0).sum() > 0
    assert np.isfinite(df.filter(like='score_').to_numpy()).all()

def test_cancerous_score_higher():
    "After a short fit on healthy toy tissue (few small nuclei), crowded large nuclei score higher on every 1 − SSIM score."
    from histo_i2i.synth import toy_tissue
    det = TranslationDetector(TranslationConfig(**TINY), device='cpu').fit(toy_tissue(32), iters=40, progress=False)
    healthy, cancer = det.score(toy_tissue(16, seed=1)), det.score(toy_tissue(16, cancer=True, seed=2))
    for k in ('ssim', 'ssim_exemplar_mean', 'ssim_own'): assert cancer[k].mean() > healthy[k].mean(), k

def test_run_dir_and_reload(fitted, demo):
    det, run = fitted
    assert (run/'checkpoint.pt').exists() and (run/'history.csv').exists()
    assert pd.read_csv(run/'history.csv').step.tolist() == list(range(1, 21))
    ck = torch.load(run/'checkpoint.pt', weights_only=True)
    assert ck['config']['method'] == 'translation' and ck['step'] == 20
    det2 = load_detector(run, device='cpu')
    x = torch.stack([demo[1][i][0] for i in range(4)])
    a, b = det.score(x), det2.score(x)
    for k in ('ssim', 'lpips'): np.testing.assert_array_equal(a[k], b[k])

def test_resume_after_kill(demo, tmp_path):
    "A run stopped at iteration 4 (its checkpoint kept) continues from there to the requested total."
    run = tmp_path/'run'
    det = TranslationDetector(TranslationConfig(**TINY), device='cpu').fit(demo[0], iters=4, run_dir=run, progress=False)
    assert det.step == 4
    det2 = TranslationDetector(TranslationConfig(**TINY), device='cpu').fit(demo[0], iters=6, run_dir=run, progress=False)
    assert det2.step == 6 and len(det2.history) == 6
    assert det2.history[:4] == det.history
    assert pd.read_csv(run/'history.csv').step.tolist() == list(range(1, 7))

def test_killed_and_resumed_equals_uninterrupted(demo, tmp_path):
    "For a fixed seed, a run killed after iteration 5 (last checkpoint at 4) and resumed gives the losses of an uninterrupted run."
    from fastai.callback.core import Callback
    class Kill(Callback):
        def after_batch(self):
            if self.learn.engine.det.step == 5: raise RuntimeError('killed')
    cfg = TranslationConfig(**{**TINY, 'checkpoint_every': 4})
    full = TranslationDetector(cfg, device='cpu').fit(demo[0], iters=8, run_dir=tmp_path/'full', progress=False)
    with pytest.raises(RuntimeError, match='killed'):
        TranslationDetector(cfg, device='cpu').fit(demo[0], iters=8, run_dir=tmp_path/'killed', progress=False, cbs=[Kill()])
    assert pd.read_csv(tmp_path/'killed'/'history.csv').step.tolist() == [1, 2, 3, 4]
    TranslationDetector(cfg, device='cpu').fit(demo[0], iters=8, run_dir=tmp_path/'killed', progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path/'killed'/'history.csv'), pd.read_csv(tmp_path/'full'/'history.csv'))
