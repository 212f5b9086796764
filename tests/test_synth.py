"The synthetic tissue generator on its own: colour does not separate healthy from tumour patches, morphology does."
import numpy as np, pytest
from sklearn.metrics import roc_auc_score
from histo_i2i.synth import synthetic_patches, patch_features

def either_way(y, s):
    a = roc_auc_score(y, s)
    return max(a, 1 - a)

@pytest.fixture(scope='module', params=[0, 1, 2])
def patches(request):
    X, y = synthetic_patches(36, n_slides=3, seed=request.param)
    return X, y, patch_features(X)

def test_both_classes(patches):
    X, y, _ = patches
    assert X.dtype == np.uint8 and X.shape[1:] == (64, 64, 3)
    assert (y == 0).sum() >= 20 and (y == 1).sum() >= 20

def test_colour_floor(patches):
    "Mean saturation of a patch does not tell tumour from healthy (AUC <= 0.65 either way)."
    _, y, f = patches
    assert either_way(y, f['saturation']) <= 0.65

def test_morphology_separates(patches):
    "Nucleus size does: the tumour is there."
    _, y, f = patches
    assert roc_auc_score(y, f['nucleus_area']) >= 0.8

def test_fine_detail_not_inverted(patches):
    "Tumour patches carry at least as much fine detail (residual of a Gaussian blur) as healthy ones, as on PCam, so poor reconstructors are not rewarded for inverted scores."
    from scipy.ndimage import gaussian_filter
    X, y, _ = patches
    g = X.astype(np.float32).mean(-1)
    detail = np.abs(g - gaussian_filter(g, (0, 1, 1))).mean((1, 2))
    assert roc_auc_score(y, detail) >= 0.5

def test_tumour_not_flatter(patches):
    "Tumour patches hold no more featureless area than healthy ones (granular cytoplasm; on PCam healthy has more, AUC 0.31), so a reconstruction of nothing, blurred or the mean image, is not rewarded for calling healthy tissue anomalous."
    _, y, f = patches
    assert roc_auc_score(y, f['flat']) <= 0.6

def test_demo_dataset_cues(tmp_path):
    "On the demo dataset (the demo profile's slides, 32-px patches): the colour floor stays at or below 0.65 AUC; healthy patches hold about as much local contrast as tumour ones (AUC >= 0.47; PCam 0.52), and a featureless reconstruction (the mean healthy image) does not score healthy patches as the more anomalous. With opaque lymphocytes both were inverted (0.42, 0.44) and GAN baselines that had learned nothing fell below 0.5 on it; with lighter ones (opacity 0.85) their colour gave healthy patches away (colour floor 0.654)."
    import torch
    from histo_i2i.batch import make_demo_dataset
    from histo_i2i.data import patch_dataset, load_batch, to_image
    from histo_i2i.methods.floors import ColourDetector
    from histo_i2i.similarity import ssim
    root = make_demo_dataset(tmp_path/'demo', n_slides=4, slide_px=2048, patch_px=32, seed=0, max_per_class=400, progress=False)
    every = patch_dataset(root, 'valid', labels=(0, 1))
    x, y = load_batch(every, np.arange(len(every))), np.asarray(every.labels)
    assert (y == 0).sum() >= 100 and (y == 1).sum() >= 100
    assert roc_auc_score(y, patch_features(to_image(x))['local_std']) >= 0.47
    mean_healthy = x[torch.as_tensor(y == 0)].mean(0, keepdim=True).expand_as(x)
    assert roc_auc_score(y, (1 - ssim(x, mean_healthy)).numpy()) >= 0.45
    colour = ColourDetector().fit(patch_dataset(root, 'train', labels=(0,), limit=200, seed=0))
    valid = patch_dataset(root, 'valid', labels=(0, 1), limit=400, seed=0)
    assert roc_auc_score(valid.labels, colour.score(valid)['colour']) <= 0.65
