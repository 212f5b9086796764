"""Bad input through the command line, as a new user would give it: every case ends with a non-zero exit status,
no traceback, and one message naming the file or option and what to do."""
import os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest

from histo_i2i.core import shared_data, skip_reason
from histo_i2i.synth import make_synthetic_slide
from histo_i2i.slide import write_tiff_slide
from histo_i2i.annotations import Annotation, write_asap_xml

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
CLI = [sys.executable, '-c', 'import sys; from histo_i2i.cli import main; sys.exit(main())']


def cli(*args, timeout=120):
    "Run histo-i2i from this checkout; (exit status, stdout, stderr)."
    r = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT)
    return r.returncode, r.stdout, r.stderr


def refused(rc, err, *words, code=2):
    "Non-zero (usage or input error), no traceback, and the message holds every word."
    assert rc == code, (rc, err)
    assert 'Traceback' not in err, err
    for w in words: assert w in err, f"{w!r} not in {err!r}"


@pytest.fixture(scope='module')
def slide(tmp_path_factory):
    "A 768 px synthetic slide with a tumour region and its XML (groups Tumor/_0...)."
    return make_synthetic_slide(tmp_path_factory.mktemp('s') / 'tumour.tif', 768, 768, tumour=True, seed=2)


def polygon_xml(path, group, xy=((100, 100), (400, 100), (400, 400), (100, 400))):
    return write_asap_xml(path, [Annotation('region', group, np.array(xy, float))])


@pytest.fixture(scope='module')
def colour_run(slide, tmp_path_factory):
    "A trained colour floor (seconds to fit) for the heatmap checks."
    d = tmp_path_factory.mktemp('m')
    rc, so, se = cli('tile', slide.path, '--out', d / 'man', '--patch-px', 32, '--workers', 0)
    assert rc == 0, se
    rc, so, se = cli('train', '--data', d / 'man' / 'tumour.parquet', '--out', d / 'run', '--method', 'colour')
    assert rc == 0, se
    return d / 'run'


# --- 1: annotation groups -------------------------------------------------------------------------
@pytest.mark.parametrize('group', ['tumor', 'Metastasis', 'None'])
def test_unknown_group_is_an_error(slide, tmp_path, group):
    s = tmp_path / 'case.tif'; s.symlink_to(slide.path)
    polygon_xml(tmp_path / 'case.xml', group)
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--patch-px', 32, '--workers', 0)
    assert rc == 1 and 'Traceback' not in se + so
    rep = pd.read_csv(tmp_path / 'out' / 'report.csv')
    assert rep.status.tolist() == ['failed']
    err = rep.error[0]
    assert 'case.xml' in err and "annotation 'region'" in err and '--tumour-groups' in err, err
    assert (f"group {group!r}" in err) if group != 'None' else 'has no group' in err
    assert not (tmp_path / 'out' / 'case.parquet').exists()


def test_tumour_groups_map_other_names(slide, tmp_path):
    s = tmp_path / 'meta.tif'; s.symlink_to(slide.path)
    polygon_xml(tmp_path / 'meta.xml', 'Metastasis')
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--patch-px', 32, '--workers', 0, '--tumour-groups', 'Metastasis')
    assert rc == 0, se
    m = pd.read_parquet(tmp_path / 'out' / 'meta.parquet')
    assert (m.tumour > 0).any() and m.attrs['settings']['tumour_groups'] == ['Metastasis']
    from histo_i2i.tiling import tile_slide        # the same through the Python API
    assert tile_slide(s, tmp_path / 'meta.xml', patch_px=32, tumour_groups=['Metastasis']).tumour.sum() == m.tumour.sum()


def test_zero_area_polygon(slide, tmp_path):
    s = tmp_path / 'flat.tif'; s.symlink_to(slide.path)
    polygon_xml(tmp_path / 'flat.xml', 'Tumor', ((10, 10), (200, 200), (400, 400)))
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--patch-px', 32, '--workers', 0)
    err = pd.read_csv(tmp_path / 'out' / 'report.csv').error[0]
    assert rc == 1 and 'flat.xml' in err and 'zero area' in err, err


def test_groups_option_needs_names(slide, tmp_path):
    rc, so, se = cli('tile', slide.path, '--out', tmp_path, '--tumour-groups', ',')
    refused(rc, se, '--tumour-groups', 'group names')


# --- 3: tile reruns ---------------------------------------------------------------------------------
def test_rerun_with_other_settings_tiles_again(slide, tmp_path):
    out = tmp_path / 'out'
    assert cli('tile', slide.path, '--out', out, '--patch-px', 32, '--workers', 0)[0] == 0
    n32 = len(pd.read_parquet(out / 'tumour.parquet'))
    rc, so, se = cli('tile', slide.path, '--out', out, '--patch-px', 64, '--workers', 0)
    assert rc == 0, se
    assert 'patch_px 32 -> 64' in so and 'skipped' not in so
    m = pd.read_parquet(out / 'tumour.parquet')
    assert set(m.patch_px) == {64} and len(m) < n32
    rc, so, se = cli('tile', slide.path, '--out', out, '--patch-px', 64, '--mpp', 2, '--workers', 0)
    assert rc == 0 and 'target_mpp' in so
    assert 'skipped' in cli('tile', slide.path, '--out', out, '--patch-px', 64, '--mpp', 2, '--workers', 0)[1]


def test_other_slide_with_same_name_is_refused(slide, tmp_path):
    out = tmp_path / 'out'
    assert cli('tile', slide.path, '--out', out, '--patch-px', 32, '--workers', 0)[0] == 0
    before = (out / 'tumour.parquet').read_bytes()
    other = make_synthetic_slide(tmp_path / 'b' / 'tumour.tif', 512, 512, tumour=False, seed=5)
    rc, so, se = cli('tile', other.path, '--out', out, '--patch-px', 32, '--workers', 0)
    assert rc == 1 and 'Traceback' not in se
    rep = pd.read_csv(out / 'report.csv')
    row = rep[rep.slide == str(other.path)].iloc[0]
    assert row.status == 'failed' and 'another slide with the same name' in row.error and 'another output folder' in row.error
    assert (out / 'tumour.parquet').read_bytes() == before


def test_report_keeps_earlier_runs(slide, tmp_path):
    out = tmp_path / 'out'
    other = make_synthetic_slide(tmp_path / 'normal.tif', 512, 512, tumour=False, seed=3)
    assert cli('tile', slide.path, '--out', out, '--patch-px', 32, '--workers', 0)[0] == 0
    assert cli('tile', other.path, '--out', out, '--patch-px', 32, '--workers', 0)[0] == 0
    rep = pd.read_csv(out / 'report.csv')
    assert rep.slide.tolist() == [str(slide.path), str(other.path)] and set(rep.status) == {'done'}


# --- 4: reproduce --set -------------------------------------------------------------------------------
@pytest.mark.parametrize('setting,words', [
    ('02_translation.itres=5', ["02_translation has no parameter 'itres'", "did you mean 'iters'"]),
    ('itres=5', ["['itres'] match no parameter"]),
    ('02_translation.iters=-5', ['02_translation.iters must be a positive integer, got -5']),
    ('iters=abc', ["iters='abc': the parameter takes int, not str"]),
    ('02_translation.lr=0', ['02_translation.lr must be a positive number']),
    ('prepare.demo_dataset.n_slide=2', ["prepare.demo_dataset has no setting 'n_slide'"]),
])
def test_reproduce_set_checked_before_running(tmp_path, setting, words):
    rc, so, se = cli('reproduce', '--set', setting, '--out', tmp_path / 'run', timeout=60)
    refused(rc, se, 'histo-i2i reproduce: error:', *words)
    assert not (tmp_path / 'run').exists()          # nothing ran, nothing was prepared


# --- 5: numeric and device-free arguments of tile / heatmap ----------------------------------------------
@pytest.mark.parametrize('args,words', [
    (['--workers', '-1'], ['--workers', 'must be a non-negative integer, got', '-1']),
    (['--workers', 'two'], ['--workers', 'non-negative integer']),
    (['--patch-px', '0'], ['--patch-px', 'positive integer']),
    (['--mpp', '0'], ['--mpp (the target resolution, µm per pixel) must be a positive number']),
    (['--mpp', '-1'], ['the target resolution', 'positive number']),
    (['--mpp', 'nan'], ['the target resolution', 'positive number']),
    (['--mpp', 'inf'], ['the target resolution', 'positive number']),
    (['--slide-mpp', '0'], ["--slide-mpp (the slide's level-0 resolution", 'positive number']),
])
def test_tile_numbers(slide, tmp_path, args, words):
    t0 = time.time()
    rc, so, se = cli('tile', slide.path, '--out', tmp_path / 'out', *args, timeout=30)
    refused(rc, se, 'histo-i2i tile: error:', *words)
    assert time.time() - t0 < 30 and not (tmp_path / 'out').exists()


def test_unreachable_scheduler_times_out(slide, tmp_path):
    rc, so, se = cli('tile', slide.path, '--out', tmp_path / 'out', '--scheduler', 'tcp://127.0.0.1:9', '--connect-timeout', 2, timeout=60)
    refused(rc, se, 'tcp://127.0.0.1:9', 'cannot reach the dask scheduler within 2 s', 'leave the scheduler out')


@pytest.mark.parametrize('args,words', [
    (['--top-k', '0'], ['--top-k', 'positive number']),
    (['--min-tissue', '1.5'], ['--min-tissue', 'from 0 to 1']),
    (['--mpp', '0'], ['the target resolution', 'positive number']),
    (['--batch-size', '0'], ['--batch-size', 'positive integer']),
])
def test_heatmap_numbers(slide, tmp_path, args, words):
    rc, so, se = cli('heatmap', '--model', tmp_path / 'no_model', '--slide', slide.path, '--out', tmp_path / 'h.png', *args)
    refused(rc, se, 'histo-i2i heatmap: error:', *words)


def test_heatmap_out_checked_before_scoring(slide, colour_run, tmp_path):
    for out, words in ((tmp_path / 'heat.bmpx', ["unknown image extension '.bmpx'", '.png']),
                       (tmp_path, ['is a folder', 'heatmap.png'])):
        t0 = time.time()
        rc, so, se = cli('heatmap', '--model', colour_run, '--slide', slide.path, '--out', out)
        refused(rc, se, '--out', *words)
    assert not list(tmp_path.glob('heat*'))


def test_heatmap_slide_mpp_and_groups(colour_run, tmp_path):
    "A slide without resolution gets one from --slide-mpp; an annotation of another dataset is mapped or refused."
    rgb = np.full((512, 512, 3), 235, np.uint8); rgb[64:448, 64:448] = (200, 110, 170)
    s = write_tiff_slide(tmp_path / 'nompp.tif', rgb, mpp=None)
    xml = polygon_xml(tmp_path / 'nompp.xml', 'Metastasis', ((128, 128), (256, 128), (256, 256), (128, 256)))
    out = tmp_path / 'heat.png'
    rc, so, se = cli('heatmap', '--model', colour_run, '--slide', s, '--out', out)
    refused(rc, se, 'nompp.tif', 'resolution unknown')
    rc, so, se = cli('heatmap', '--model', colour_run, '--slide', s, '--out', out, '--slide-mpp', 1, '--annotation', xml)
    refused(rc, se, 'nompp.xml', "group 'Metastasis'", '--tumour-groups')
    rc, so, se = cli('heatmap', '--model', colour_run, '--slide', s, '--out', out, '--slide-mpp', 1, '--annotation', xml,
                     '--tumour-groups', 'Metastasis')
    assert rc == 0 and out.exists(), se


# --- 6: leftovers and kills ---------------------------------------------------------------------------------
def test_hidden_and_temporary_files_are_not_slides(slide, tmp_path):
    d = tmp_path / 'slides'; d.mkdir()
    (d / 'tumour.tif').symlink_to(slide.path)
    (d / '.tumour.tif.x1y2.tif').write_bytes(b'')               # what a killed copy leaves
    (d / 'other.tif.part').write_bytes(b'')
    rc, so, se = cli('tile', d, '--out', tmp_path / 'out', '--patch-px', 32, '--workers', 0)
    assert rc == 0, se
    assert pd.read_csv(tmp_path / 'out' / 'report.csv').slide.tolist() == [str(d / 'tumour.tif')]


def test_leftover_temporary_manifest_is_cleaned(slide, tmp_path):
    out = tmp_path / 'out'; out.mkdir()
    left = out / '.tumour.parquet.ab12cd.parquet'; left.write_bytes(b'')   # a 0-byte leftover of a killed write
    rc, so, se = cli('tile', slide.path, '--out', out, '--patch-px', 32, '--workers', 0)
    assert rc == 0, se
    assert not left.exists() and sorted(p.name for p in out.iterdir()) == ['report.csv', 'tumour.parquet']


def test_sigterm_cleans_up(tmp_path):
    "A plain kill during `tile --export` ends with one line, keeps finished outputs and leaves no temporary file."
    s = make_synthetic_slide(tmp_path / 'big.tif', 3072, 3072, tumour=True, seed=4)
    out = tmp_path / 'out'
    p = subprocess.Popen([*CLI, 'tile', str(s.path), '--out', str(out), '--patch-px', '32', '--workers', '0', '--export'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    t0 = time.time()
    while not any((out / 'patches').rglob('*.png')) and p.poll() is None and time.time() - t0 < 120: time.sleep(0.05)
    if p.poll() is not None: pytest.skip('the export finished before it could be interrupted')
    p.send_signal(signal.SIGTERM)
    so, se = p.communicate(timeout=60)
    refused(p.returncode, se, 'histo-i2i tile: interrupted', 'run again', code=130)
    assert (out / 'big.parquet').exists() and (out / 'report.csv').exists()
    assert not [q for q in out.rglob('.*')], list(out.rglob('.*'))


# --- 7: smaller ones ---------------------------------------------------------------------------------------
def test_folder_given_as_slide(tmp_path):
    (tmp_path / 'empty').mkdir()
    rc, so, se = cli('tile', tmp_path / 'empty', '--out', tmp_path / 'out')
    refused(rc, se, 'empty: is a folder without slide files', 'give slide files')


def test_annotation_outside_the_slide_names_the_xml(slide, tmp_path):
    s = tmp_path / 'small.tif'; s.symlink_to(slide.path)
    polygon_xml(tmp_path / 'small.xml', 'Tumor', ((100, 100), (5000, 100), (5000, 400)))
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--patch-px', 32, '--workers', 0)
    err = pd.read_csv(tmp_path / 'out' / 'report.csv').error[0]
    assert rc == 1 and 'small.xml: annotation' in err and 'outside the slide small.tif' in err, err


def test_tile_slide_mpp(tmp_path):
    rgb = np.full((512, 512, 3), 235, np.uint8); rgb[64:448, 64:448] = (200, 110, 170)
    s = write_tiff_slide(tmp_path / 'nompp.tif', rgb, mpp=None)
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--patch-px', 64, '--workers', 0)
    assert rc == 1 and 'resolution unknown' in pd.read_csv(tmp_path / 'out' / 'report.csv').error[0]
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--patch-px', 64, '--workers', 0, '--slide-mpp', 0.5)
    assert rc == 0, se
    assert pd.read_parquet(tmp_path / 'out' / 'nompp.parquet').attrs['mpp'] == 0.5


def test_real_slide_unknown_group(tmp_path):
    "On a real slide: a Metastasis polygon is refused until it is mapped."
    src = shared_data('slides', 'CMU-1-Small-Region.svs')
    if src is None: pytest.skip(skip_reason('slides', 'CMU-1-Small-Region.svs'))
    s = tmp_path / 'cmu.svs'; s.symlink_to(src)
    polygon_xml(tmp_path / 'cmu.xml', 'Metastasis', ((500, 500), (1200, 500), (1200, 1200), (500, 1200)))
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--patch-px', 128, '--workers', 0)
    assert rc == 1 and "group 'Metastasis'" in pd.read_csv(tmp_path / 'out' / 'report.csv').error[0]
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--patch-px', 128, '--workers', 0, '--tumour-groups', 'Metastasis')
    assert rc == 0 and (pd.read_parquet(tmp_path / 'out' / 'cmu.parquet').tumour > 0).any(), se
