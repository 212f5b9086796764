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
