"Batch tiling with bad inputs, resuming, and atomic manifests (a killed run's temp file is not a manifest)."
import os
from pathlib import Path
import pandas as pd
import pytest
from histo_i2i.synth import make_synthetic_slide
from histo_i2i.batch import tile_slides, manifest_path, make_demo_dataset
from histo_i2i.tiling import read_manifest


@pytest.fixture(scope='module')
def slides(tmp_path_factory):
    d = tmp_path_factory.mktemp('slides')
    good = make_synthetic_slide(d/'good.tif', 1024, 1024, seed=1, mpp=1.0)
    corrupt = d/'corrupt.tif'
    data = good.path.read_bytes()
    corrupt.write_bytes(data[:len(data) // 3])          # a truncated copy: the header is fine, the tiles are cut off
    return dict(good=good.path, corrupt=corrupt, missing=d/'missing.svs', xml=good.xml_path)


def test_batch_bad_inputs_resume(slides, tmp_path):
    batch = [slides['good'], slides['corrupt'], slides['missing']]
    rep = tile_slides(batch, tmp_path/'out', n_workers=2, patch_px=64, progress=False)
    assert list(rep.status) == ['done', 'failed', 'failed']
    assert rep.n_patches[0] > 0 and Path(rep.manifest[0]).exists()
    assert 'corrupt.tif' in rep.error[1] and rep.error[1]
    assert 'missing.svs' in rep.error[2] and 'does not exist' in rep.error[2]
    on_disk = pd.read_csv(tmp_path/'out'/'report.csv')
    assert list(on_disk.status) == ['done', 'failed', 'failed']
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == ['good.parquet', 'report.csv']
    m = read_manifest(rep.manifest[0])
    assert (m.tumour > 0).any()                          # the annotation beside the slide was used
    # second run: the finished slide is skipped, the failures are retried (and fail again)
    rep2 = tile_slides(batch, tmp_path/'out', n_workers=0, patch_px=64, progress=False)
    assert list(rep2.status) == ['skipped', 'failed', 'failed']
    assert rep2.n_patches[0] == rep.n_patches[0]


def test_killed_run_leaves_no_manifest(slides, tmp_path):
    out = tmp_path/'out'; out.mkdir()
    # what a run killed while writing leaves behind: a temporary file beside the manifest's place
    leftover = out/f".{manifest_path(out, slides['good']).name}.x1y2z3.parquet"
    leftover.write_bytes(b'PAR1 partial')
    rep = tile_slides([slides['good']], out, n_workers=0, patch_px=64, progress=False)
    assert list(rep.status) == ['done']                  # not mistaken for a finished manifest
    assert len(read_manifest(manifest_path(out, slides['good']))) == rep.n_patches[0]


def test_unwritable_output(slides, tmp_path):
    from histo_i2i.core import HistoError
    ro = tmp_path/'ro'; ro.mkdir(); os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK): pytest.skip('running as a user who can write anywhere')
        with pytest.raises(HistoError, match='not writable'): tile_slides([slides['good']], ro, n_workers=0)
    finally: os.chmod(ro, 0o700)


def test_demo_dataset_layout(tmp_path):
    root = make_demo_dataset(tmp_path/'demo', n_slides=2, slide_px=1024, progress=False)
    man = pd.read_csv(root/'manifest.csv')
    assert {'train/0', 'valid/0', 'valid/1'} <= set(man.split + '/' + man.label.astype(str))
    for split, label in [('train', 0), ('valid', 0), ('valid', 1)]:
        assert len(list((root/split/str(label)).glob('*.png'))) == ((man.split == split) & (man.label == label)).sum()


def test_existing_cluster(slides, tmp_path):
    "scheduler=ADDRESS runs the batch on a dask.distributed cluster that is already up."
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rep = tile_slides([slides['good'], slides['missing']], tmp_path/'out', scheduler=cluster.scheduler_address,
                          patch_px=64, progress=False)
    assert list(rep.status) == ['done', 'failed']
