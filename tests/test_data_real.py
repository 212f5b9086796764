"Real-data checks of the patch datasets on the shared PCam subset (skipped when it is absent)."
import numpy as np
import pytest
import torch

from histo_i2i.core import shared_data, skip_reason
from histo_i2i.data import pcam_folder, patch_dataset, training_loader, Augment, load_batch

PCAM = shared_data('pcam-subset')
pytestmark = pytest.mark.skipif(PCAM is None, reason=skip_reason('pcam-subset'))


def test_valid_counts_and_labels():
    ds = pcam_folder(PCAM, 'valid')
    assert (ds.labels == 0).sum() == 1500 and (ds.labels == 1).sum() == 1500
    assert all('/valid/0/' in p for p in ds.paths[:1500]) and all('/valid/1/' in p for p in ds.paths[1500:])
    assert ds.paths == sorted(ds.paths)


def test_train_healthy_only():
    ds = patch_dataset(PCAM, 'train', labels=(0,), limit=100, seed=0)
    assert len(ds) == 100 and (ds.labels == 0).all()
    assert ds.paths == patch_dataset(PCAM, 'train', labels=(0,), limit=100, seed=0).paths


def test_values_and_sizes():
    ds = pcam_folder(PCAM, 'valid', limit=16, seed=0)
    assert (ds.labels == 0).sum() == 8
    x = load_batch(ds)
    assert x.shape == (16, 3, 96, 96) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1           # real content, full range used
    assert ds.read(0).dtype == np.uint8 and ds.read(0).shape == (96, 96, 3)
    assert load_batch(ds.with_size(64, 'center'), 2).shape == (2, 3, 64, 64)
    assert load_batch(ds.with_size(32), 2).shape == (2, 3, 32, 32)


def test_training_feed():
    "The training feed on real patches: deterministic batches per iteration, augmented within [-1, 1], stain jitter changes colour only a little."
    train = pcam_folder(PCAM, 'train', labels=(0,), limit=64, seed=0)
    dl = training_loader(train, 8, seed=0)
    dl.batch_sampler.start, dl.batch_sampler.n = 3, 2
    (x, y), (x2, _) = list(dl)
    dl.batch_sampler.start, dl.batch_sampler.n = 3, 1
    assert torch.equal(next(iter(dl))[0], x) and x.shape == (8, 3, 96, 96) and (y == 0).all()
    aug = Augment(crop=64, stain=0.05, brightness=0.05)
    xa = aug(x, torch.Generator().manual_seed(0))
    assert xa.shape == (8, 3, 64, 64) and xa.min() >= -1 and xa.max() <= 1
    assert torch.equal(xa, aug(x, torch.Generator().manual_seed(0)))
    assert 0.005 < (xa.mean((2, 3)) - x.mean((2, 3))).abs().mean() < 0.2
