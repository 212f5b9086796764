"""A mini CAMELYON16 tree from the command line, tiled into split manifests: layout, labels, split column, and the datasets read from it."""
import os, json
from pathlib import Path
import numpy as np, pandas as pd, pytest

os.environ.setdefault('OMP_NUM_THREADS', '1')
from histo_i2i.cli import main
from histo_i2i.camelyon16 import camelyon16_slides, tile_camelyon16, read_reference, REFERENCE, TREE_RECORD
from histo_i2i.data import patch_dataset, dataset_labels
from histo_i2i.tiling import read_manifest
from histo_i2i.core import HistoError


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp('c16')/'CAMELYON16'
    assert main(['synth', root, '--layout', 'camelyon16', '--slides', 5, '--slide-px', 1024, '--seed', 1]) == 0
    return root


def test_synth_layout(tree, capsys):
    files = sorted(p.relative_to(tree).as_posix() for p in tree.rglob('*') if p.is_file())
    assert files == ['camelyon16_tree.json',
                     'testing/images/test_001.tif', 'testing/images/test_002.tif', 'testing/lesion_annotations/test_001.xml',
                     'testing/reference.csv',
                     'training/lesion_annotations/tumor_001.xml', 'training/normal/normal_001.tif', 'training/normal/normal_002.tif',
                     'training/tumor/tumor_001.tif']
    ref = read_reference(tree/REFERENCE)
    assert ref.key.tolist() == ['test_001', 'test_002'] and ref.label.tolist() == [1, 0]
    slides = camelyon16_slides(tree)
    assert slides.groupby(['split', 'label']).size().to_dict() == {('test', 0): 1, ('test', 1): 1, ('train', 0): 2, ('train', 1): 1}
    assert slides.annotation.notna().tolist() == (slides.label == 1).tolist()
    # a rerun with the same settings reuses the tree; other settings are refused and the tree is left as it was
    stamp = {p: p.stat().st_mtime_ns for p in tree.rglob('*.tif')}
    assert main(['synth', tree, '--layout', 'camelyon16', '--slides', 5, '--slide-px', 1024, '--seed', 1]) == 0
    assert 'training 2 normal + 1 tumour slides, testing 1 normal + 1 tumour slides' in capsys.readouterr().out
    assert main(['synth', tree, '--layout', 'camelyon16', '--slides', 5, '--slide-px', 1024, '--seed', 2]) == 2
    assert 'other settings (seed 1 -> 2)' in capsys.readouterr().err
    assert stamp == {p: p.stat().st_mtime_ns for p in tree.rglob('*.tif')}
    assert json.loads((tree/TREE_RECORD).read_text())['params']['seed'] == 1


def test_tile_into_splits(tree, tmp_path):
    out = tmp_path/'manifests'
    res = tile_camelyon16(tree, out, patch_px=32, n_workers=0, progress=False)
    assert res.name.tolist() == ['normal_001', 'normal_002', 'test_001', 'test_002'] and (res.status == 'done').all()
    for r in res.itertuples():
        m = read_manifest(r.manifest)
        assert set(m.split) == {r.split} and len(m) == r.n_patches > 0
    train = patch_dataset(out, split='train', labels=(0,))
    scored = patch_dataset(out, split='test', labels=(0, 1))
    assert {Path(s).stem for s in train.rows.slide} == {'normal_001', 'normal_002'}
    assert {Path(s).stem for s in scored.rows.slide} == {'test_001', 'test_002'}
    y = dataset_labels(scored)
    assert set(y.tolist()) == {0, 1}
    assert (scored.rows.tumour[y == 1] >= 0.9).all() and (scored.rows.tumour[y == 0] == 0).all()
    assert set(scored.rows.slide[y == 1].map(lambda s: Path(s).stem)) == {'test_001'}
    x, label = train[0]
    assert tuple(x.shape) == (3, 32, 32) and label == 0
    # the same call again skips every slide; the tumour training slide joins the training split on request
    assert (tile_camelyon16(tree, out, patch_px=32, n_workers=0, progress=False).status == 'skipped').all()
    res2 = tile_camelyon16(tree, out, patch_px=32, include_tumour_slides=True, n_workers=0, progress=False)
    assert res2.set_index('name').status.to_dict()['tumor_001'] == 'done'
    train2 = patch_dataset(out, split='train', labels=(0,))
    assert 'tumor_001' in {Path(s).stem for s in train2.rows.slide} and (train2.rows.tumour == 0).all()


def test_not_a_tree(tmp_path):
    (tmp_path/'training'/'normal').mkdir(parents=True)
    with pytest.raises(HistoError, match='the folder training/tumor/ is missing'): camelyon16_slides(tmp_path)


def test_synth_demo(tmp_path, capsys):
    assert main(['synth', tmp_path/'demo', '--slides', 2, '--slide-px', 768]) == 0
    out = capsys.readouterr().out
    assert 'demo dataset in' in out and 'train/0' in out
    assert any((tmp_path/'demo'/'train'/'0').glob('*.png'))
