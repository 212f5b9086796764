"Baselines (f-AnoGAN, StyleGAN2 projection, plain autoencoder, supervised classifier): a tiny fit through the engine, and a round trip through load_detector."
import numpy as np, pytest, torch
from histo_i2i.detector import METHODS, load_detector, score_dataset
from histo_i2i.synth import toy_tissue
from histo_i2i.methods.fanogan import FAnoGANDetector
from histo_i2i.methods.stylegan2 import StyleGAN2Detector
from histo_i2i.methods.supervised import SupervisedDetector

class LabelledPatches(torch.utils.data.Dataset):
    "Toy tissue (label 0) and noisy toy tissue (label 1)."
    def __init__(self, n=16, size=32):
        x = toy_tissue(n, size, seed=0)
        x[n//2:] = (x[n//2:] + 0.8*torch.randn(x[n//2:].shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
        self.x, self.labels = x, np.array([0]*(n//2) + [1]*(n - n//2))
        self.paths = [f"toy_{i}.png" for i in range(n)]
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return self.x[i], int(self.labels[i])

BASELINES = [m for m in METHODS if METHODS[m].tiny and METHODS[m].role != 'proposed']   # the translation model: tests/test_translation.py
ITERS = 3

def test_registered():
    assert {'fanogan', 'stylegan2', 'supervised'} <= set(METHODS)
    assert METHODS['fanogan'] is FAnoGANDetector and METHODS['stylegan2'] is StyleGAN2Detector
    assert METHODS['supervised'] is SupervisedDetector

@pytest.mark.parametrize('method', BASELINES)
def test_round_trip(method, tmp_path):
    torch.set_num_threads(1)
    ds = LabelledPatches()
    run = tmp_path/method
    det = METHODS[method](device='cpu', seed=0, iters=ITERS, **METHODS[method].tiny).fit(ds, run_dir=run, progress=False)
    assert det.step == ITERS and (run/'history.csv').exists()
    assert torch.load(run/'checkpoint.pt', weights_only=True)['config']['method'] == method
    det2 = load_detector(run, device='cpu')
    assert type(det2) is type(det) and det2.config == det.config
    df, df2 = score_dataset(det, ds, bs=8, progress=False), score_dataset(det2, ds, bs=8, progress=False)
    assert list(df.columns) == ['path', 'label'] + [f'score_{k}' for k in det.score_names]
    assert len(df) == len(ds) and np.isfinite(df.filter(like='score_').to_numpy()).all()
    np.testing.assert_allclose(df.filter(like='score_').to_numpy(), df2.filter(like='score_').to_numpy(), rtol=1e-5, atol=1e-6)

def test_supervised_needs_both_classes():
    from histo_i2i.core import HistoError
    with pytest.raises(HistoError, match='both classes'):
        SupervisedDetector(arch='small_cnn', iters=1).fit(toy_tissue(4, 32), progress=False)
