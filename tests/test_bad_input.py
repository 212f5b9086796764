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
    ('methods.translation.itres=5', ["TranslationConfig has no configuration field 'itres'", "did you mean 'iters'"]),
    ('itres=5', ["['itres'] match no parameter"]),
    ('methods.translation.iters=-5', ['--set methods.translation.iters: iters = -5: must be a whole number of iterations >= 1']),
    ('methods.translation.iters=abc', ["iters takes a int (default 1000), not 'abc'"]),
    ('methods.translation.lr=0', ['--set methods.translation.lr: lr = 0.0: must be a positive number']),
    ('02_translation.iters=5', ["02_translation has no parameter 'iters'", 'a method setting is written methods.METHOD.iters=VALUE']),
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


# --- 8: round 3: implausible resolutions, strict inputs, full disks, memory, interrupts ---------------------
def write_72dpi_tiff(path, side=2048):
    "A tiled TIFF tagged 72 dpi, the default of many image programs (read as 352.8 µm/px)."
    import tifffile
    rgb = np.random.default_rng(0).integers(120, 250, (side, side, 3), dtype=np.uint8)
    with tifffile.TiffWriter(path) as tw:
        tw.write(rgb, tile=(256, 256), photometric='rgb', resolution=(72, 72), resolutionunit='INCH', metadata=None)
    return path


def test_72dpi_slide_refused_fast_and_small(tmp_path):
    "The slide would need a 90,000² px tissue mask: refused on opening, in seconds and well under 1 GB."
    s = write_72dpi_tiff(tmp_path / 'dpi72.tif')
    # the command's own peak (VmHWM of its address space): getrusage's ru_maxrss would also count the RSS of the
    # pytest process it was forked from, which Linux carries across fork and exec
    measured = [sys.executable, '-c', 'import sys, re; from histo_i2i.cli import main; rc = main(); '
                'hwm = re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1); '
                'print(f"maxrss_kb={hwm}", file=sys.stderr); sys.exit(rc)']
    r = subprocess.run([*measured, 'tile', str(s), '--out', str(tmp_path / 'out'), '--workers', '0', '--patch-px', '32'],
                       capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    rc, so, se = r.returncode, r.stdout, r.stderr
    assert rc == 1 and 'Traceback' not in se + so, se
    assert 'dpi72.tif' in se and '352.8 µm/px' in se and '--slide-mpp' in se, se
    assert pd.read_csv(tmp_path / 'out' / 'report.csv').seconds[0] < 5
    assert int(se.split('maxrss_kb=')[1].split()[0]) < 1024 ** 2      # the whole command, imports included: under 1 GB
    rc, so, se = cli('tile', s, '--out', tmp_path / 'out', '--workers', 0, '--patch-px', 32, '--slide-mpp', 250)
    assert rc == 1 and 'Traceback' not in se and '250 nm is 0.25 µm: give --slide-mpp 0.25' in se, se


def test_profile_typo_refused(tmp_path):
    "A misspelt key (top level or nested) is refused before anything runs, with the valid names."
    p = tmp_path / 'mine.json'
    p.write_text('{"paramters": {"data": "/my/patches"}}')
    rc, so, se = cli('reproduce', '--profile', p, '--out', tmp_path / 'run')
    refused(rc, se, 'mine.json', "unknown key 'paramters' in the profile", "'parameters'", 'valid keys')
    p.write_text('{"parameters": {"dta": "/my/patches"}}')
    rc, so, se = cli('reproduce', '--profile', p, '--out', tmp_path / 'run')
    refused(rc, se, 'mine.json', "['dta'] are declared by no notebook", "did you mean 'data'?")
    assert not (tmp_path / 'run').exists()


def pcam_h5_pair(root, x, y, split='valid'):
    import h5py
    from histo_i2i.data import PCAM_H5
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / PCAM_H5.format(split=split, xy='x'), 'w') as f: f['x'] = x
    with h5py.File(root / PCAM_H5.format(split=split, xy='y'), 'w') as f: f['y'] = y.reshape(-1, 1, 1, 1)
    return root


def test_h5_float_patches_scaled_or_refused(patch_run, tmp_path):
    "float32 in [0, 1] is scaled to 0-255 (not cast to near-black); values no image holds are refused, naming the file."
    from histo_i2i.data import patch_dataset
    x = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8); y = np.arange(6) % 2
    f01 = pcam_h5_pair(tmp_path / 'f01', x.astype(np.float32) / 255, y)
    assert np.array_equal(patch_dataset(f01, 'valid').read(3), x[3])
    u8 = pcam_h5_pair(tmp_path / 'u8', x, y)
    for d in (f01, u8): assert cli('score', '--model', patch_run, '--data', d, '--out', d / 's.csv')[0] == 0
    assert np.allclose(pd.read_csv(f01 / 's.csv').score_colour, pd.read_csv(u8 / 's.csv').score_colour)
    bad = pcam_h5_pair(tmp_path / 'pm1', x.astype(np.float32) / 127.5 - 1, y)
    rc, so, se = cli('score', '--model', patch_run, '--data', bad, '--out', tmp_path / 's.csv')
    refused(rc, se, 'split_valid_x.h5: patches hold float32 values from -1', 'floats in [0, 1]')


def test_heatmap_single_slide_uses_its_xml(slide, colour_run, tmp_path):
    "`heatmap --slide S` outlines S's <stem>.xml and labels the patches under it, as the batch form does."
    s = tmp_path / 'case.tif'; s.symlink_to(slide.path)
    (tmp_path / 'case.xml').write_bytes(Path(slide.xml_path).read_bytes())
    rc, so, se = cli('heatmap', '--model', colour_run, '--slide', s, '--out', tmp_path / 'h.png', '--patch-px', 32)
    assert rc == 0 and 'Traceback' not in se, se
    assert 'case.xml outlined' in so, so
    single = pd.read_csv(tmp_path / 'h.csv')
    assert (single.tumour > 0).any()
    rc, so, se = cli('heatmap', '--model', colour_run, s, '--out', tmp_path / 'batch', '--patch-px', 32, '--workers', 0)
    assert rc == 0, se
    batch = pd.read_csv(tmp_path / 'batch' / 'case.csv')
    assert np.allclose(single.tumour, batch.tumour) and np.allclose(single.score_colour, batch.score_colour)


def write_pcam_folder(root, labels, sizes=(32,), n=3):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ('train', 'valid'):
        for l in labels:
            d = root / split / str(l); d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                for s in sizes:
                    Image.fromarray(rng.integers(0, 256, (s, s, 3), dtype=np.uint8)).save(d / f'p{i}_{s}.png')
    return root


@pytest.fixture(scope='module')
def patch_run(tmp_path_factory):
    "A colour floor trained on a small PCam-layout folder."
    d = tmp_path_factory.mktemp('pr')
    rc, so, se = cli('train', '--data', write_pcam_folder(d / 'ok', (0, 1)), '--out', d / 'run', '--method', 'colour')
    assert rc == 0, se
    return d / 'run'


def test_unexpected_label_folder_refused(patch_run, tmp_path):
    data = write_pcam_folder(tmp_path / 'pc', (0, 2))
    rc, so, se = cli('score', '--model', patch_run, '--data', data, '--out', tmp_path / 's.csv')
    refused(rc, se, 'pc/valid', 'label folder(s) 2', '0 (normal) nor 1 (tumour)')
    assert not (tmp_path / 's.csv').exists()


def test_mixed_patch_sizes_refused_before_work(patch_run, tmp_path):
    data = write_pcam_folder(tmp_path / 'mixed', (0, 1), sizes=(96, 128))
    rc, so, se = cli('score', '--model', patch_run, '--data', data, '--out', tmp_path / 's.csv')
    refused(rc, se, 'mixed', '96 x 96 px', '128 x 128 px', 'are mixed', 'one size')
    rc, so, se = cli('train', '--data', data, '--out', tmp_path / 'run', '--method', 'ae', '--iters', 2, '--width', 8, '--batch-size', 2)
    refused(rc, se, 'mixed', 'are mixed')
    assert not (tmp_path / 'run' / 'checkpoint.pt').exists()


def test_nan_coordinates_in_manifest(slide, tmp_path):
    from histo_i2i.tiling import tile_slide
    df = tile_slide(slide.path, patch_px=32).astype({'x': 'float64'})
    df.loc[2, 'x'] = np.nan
    df.to_parquet(tmp_path / 'm.parquet', index=False)
    rc, so, se = cli('train', '--data', tmp_path / 'm.parquet', '--out', tmp_path / 'run', '--method', 'colour')
    refused(rc, se, 'm.parquet', 'column x', 'row 2', 'tile the slide again')


def test_batch_size_beyond_memory_is_lowered(patch_run, tmp_path):
    "A batch size that would not fit is lowered to one that does, with one line naming the option."
    data = write_pcam_folder(tmp_path / 'pc', (0, 1))
    env = {**ENV, 'HISTO_I2I_MEMORY': '100M'}
    r = subprocess.run([*CLI, 'score', '--model', str(patch_run), '--data', str(data), '--out', str(tmp_path / 's.csv'),
                        '--batch-size', '100000'], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr
    assert 'histo-i2i: warning: a batch of' in r.stderr and '(--batch-size) would take' in r.stderr and 'working in batches of' in r.stderr, r.stderr
    assert len(pd.read_csv(tmp_path / 's.csv')) == 6


# in-process: failures of the machine, simulated where they happen
def run_main(capsys, *args):
    from histo_i2i.cli import main
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_disk_full_while_scoring(patch_run, tmp_path, monkeypatch, capsys):
    "ENOSPC while the score table is written: one line naming it; the table of an earlier run is kept intact."
    data = write_pcam_folder(tmp_path / 'pc', (0, 1))
    out = tmp_path / 's.csv'; out.write_text('an earlier result\n')
    def full(self, path, *a, **k): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(pd.DataFrame, 'to_csv', full)
    rc, so, se = run_main(capsys, 'score', '--model', patch_run, '--data', data, '--out', out)
    refused(rc, se, 'histo-i2i score: error: the disk is full while writing', str(out), 'finished outputs are kept', 'run the same command again', code=3)
    assert out.read_text() == 'an earlier result\n' and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith('.')) == []


def test_disk_full_while_saving_a_checkpoint(tmp_path, monkeypatch, capsys):
    "torch.save reports a full disk as a RuntimeError ('unexpected pos'): the same one line."
    import torch
    data = write_pcam_folder(tmp_path / 'pc', (0, 1))
    def full(*a, **k): raise RuntimeError('[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0')
    monkeypatch.setattr(torch, 'save', full)
    rc, so, se = run_main(capsys, 'train', '--data', data, '--out', tmp_path / 'run', '--method', 'colour')
    refused(rc, se, 'writing failed while writing', 'checkpoint.pt', 'is the disk full?', code=3)
    assert not (tmp_path / 'run' / 'checkpoint.pt').exists()


def test_out_of_memory_is_one_line(patch_run, tmp_path, monkeypatch, capsys):
    import histo_i2i.data as data_mod
    data = write_pcam_folder(tmp_path / 'pc', (0, 1))
    def oom(*a, **k): raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 110592000000 bytes")
    monkeypatch.setattr(data_mod, 'stack_patches', oom)
    rc, so, se = run_main(capsys, 'score', '--model', patch_run, '--data', data, '--out', tmp_path / 's.csv')
    refused(rc, se, 'histo-i2i score: error: out of memory', 'lower --batch-size', code=3)


def test_output_on_a_full_device(patch_run, tmp_path):
    "/dev/full as the output (a device whose writes fail with ENOSPC): written in place, never replaced, and the failure is one line."
    if not Path('/dev/full').is_char_device(): pytest.skip('no /dev/full on this system')
    data = write_pcam_folder(tmp_path / 'pc', (0, 1))
    rc, so, se = cli('score', '--model', patch_run, '--data', data, '--out', '/dev/full')
    refused(rc, se, 'histo-i2i score: error: the disk is full while writing /dev/full', code=3)
    assert Path('/dev/full').is_char_device() and not Path('/dev/full.json').exists()


def test_ctrl_c_during_reproduce_is_one_line(tmp_path, monkeypatch, capsys):
    "An interrupted step (its kernel interrupted, its training checkpointed) ends `reproduce` with one line and status 130."
    import histo_i2i.reproduce as rp
    def interrupted(step, **kw): raise KeyboardInterrupt(f"{step['step']} stopped; a training step keeps its last checkpoint")
    monkeypatch.setattr(rp, 'run_step', interrupted)
    monkeypatch.setattr(rp, 'prepare_data', lambda *a, **k: {})
    rc, so, se = run_main(capsys, 'reproduce', '--out', tmp_path / 'run', '--steps', '02_translation')
    refused(rc, se, 'histo-i2i reproduce: interrupted (02_translation stopped', 'the same command run again', code=130)
