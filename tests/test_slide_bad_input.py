"""Bad input to the slide layer: every case gives a clear error naming the file and the problem
(or, for a slide without tissue, an empty manifest)."""
import os, shutil
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from histo_i2i.core import HistoError, shared_data, skip_reason
from histo_i2i.slide import Slide, SlideError, open_slide, write_tiff_slide
from histo_i2i.annotations import AnnotationError, Annotation, read_asap_xml
from histo_i2i.tiling import (tile_slide, write_manifest, read_manifest, export_patches, MANIFEST_COLUMNS,
                              read_patch)

CMU = ('slides', 'CMU-1-Small-Region.svs')
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_XML = ROOT / 'data' / 'example_annotation.xml'


def raises(exc, fn, *words):
    "Call fn, check it raises `exc` and that the message contains every word (the file name first)."
    with pytest.raises(exc) as info: fn()
    msg = str(info.value)
    for w in words: assert w in msg, f"{w!r} not in {msg!r}"
    return msg


@pytest.fixture(scope='module')
def slide_1024(tmp_path_factory):
    "1024 x 768 px slide at 0.5 µm/px: grey background, a pink tissue rectangle (the geometry of data/example_annotation.xml)."
    img = np.full((768, 1024, 3), (236, 234, 238), np.uint8)
    img[128:640, 192:896] = (214, 130, 184)
    return write_tiff_slide(tmp_path_factory.mktemp('slides') / 'known.tif', img, mpp=0.5)


# --- slides ----------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    p = tmp_path / 'absent.svs'
    raises(SlideError, lambda: Slide(p), str(p), 'does not exist')
    raises(SlideError, lambda: tile_slide(p), 'absent.svs', 'does not exist')


def test_folder_is_not_a_slide(tmp_path):
    raises(SlideError, lambda: Slide(tmp_path), str(tmp_path), 'folder')


@pytest.mark.parametrize('name,content,words', [
    ('notes.svs', b'just some text\n', ['not a slide']),
    ('empty.tif', b'', ['empty', 'not a slide']),
    ('doc.ndpi', b'%PDF-1.4 fake', ['not a slide', 'PDF']),
])
def test_not_a_slide(tmp_path, name, content, words):
    p = tmp_path / name; p.write_bytes(content)
    raises(SlideError, lambda: Slide(p), str(p), *words)


def test_png_is_unsupported(tmp_path):
    p = tmp_path / 'image.png'
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(p)
    raises(SlideError, lambda: Slide(p), str(p), 'not a slide', 'PNG')


def test_untiled_tiff_is_unsupported(tmp_path):
    p = tmp_path / 'flat.tif'
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(p)
    raises(SlideError, lambda: Slide(p), str(p), 'unsupported format', 'without tiles')


@pytest.mark.parametrize('frac', [0.05, 0.5, 0.9, 0.99])
def test_truncated_synthetic_slide(tmp_path, slide_1024, frac):
    data = slide_1024.read_bytes()
    p = tmp_path / 'cut.tif'; p.write_bytes(data[:int(len(data) * frac)])
    raises(SlideError, lambda: Slide(p), str(p), 'truncated or corrupt')


@pytest.mark.parametrize('frac', [0.1, 0.5, 0.9, 0.999])
def test_truncated_real_slide(tmp_path, frac):
    src = shared_data(*CMU)
    if src is None: pytest.skip(skip_reason(*CMU))
    data = src.read_bytes()
    p = tmp_path / 'CMU-1-cut.svs'; p.write_bytes(data[:int(len(data) * frac)])
    raises(SlideError, lambda: Slide(p), str(p), 'truncated or corrupt')


def test_corrupt_tile_data(tmp_path):
    "JPEG tiles overwritten with garbage: the error names the file whether it shows at opening or at reading."
    img = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    p = write_tiff_slide(tmp_path / 'garbled.tif', img, mpp=0.5, compression='jpeg')
    import tifffile
    with tifffile.TiffFile(p) as t: off, cnt = t.pages[0].dataoffsets[0], t.pages[0].databytecounts[0]
    data = bytearray(p.read_bytes()); data[off:off + cnt] = b'\x00' * cnt
    p.write_bytes(bytes(data))
    def open_and_read():
        with Slide(p) as s: s.read_region(0, 0, 0, 64, 64)
    raises(SlideError, open_and_read, str(p), 'corrupt')


def test_no_mpp_and_no_override(tmp_path):
    p = write_tiff_slide(tmp_path / 'nompp.tif', _pink_square(), mpp=None)
    msg = raises(SlideError, lambda: Slide(p), str(p), 'resolution unknown', 'mpp=')
    raises(SlideError, lambda: tile_slide(p, patch_px=64), str(p), 'resolution unknown')
    assert Slide(p, mpp=0.5).mpp == 0.5                     # an explicit override works
    df = tile_slide(p, patch_px=64, mpp=0.5)
    assert list(df.columns) == list(MANIFEST_COLUMNS)
    assert len(df) > 0 and read_patch(df.iloc[0]).shape == (64, 64, 3)   # rows reopen the slide without needing mpp
    raises(SlideError, lambda: Slide(p, mpp=-1), str(p), 'positive')


def test_target_finer_than_level0(slide_1024):
    raises(SlideError, lambda: tile_slide(slide_1024, patch_px=64, target_mpp=0.1), 'known.tif', 'finer than level 0')


# --- annotations -----------------------------------------------------------------------------
def test_malformed_xml(tmp_path):
    p = tmp_path / 'broken.xml'; p.write_text('<ASAP_Annotations><Annotations><Annotation Name="a">')
    raises(AnnotationError, lambda: read_asap_xml(p), str(p), 'malformed XML')
    q = tmp_path / 'zero.xml'; q.write_text('')
    raises(AnnotationError, lambda: read_asap_xml(q), str(q), 'malformed XML')


def test_missing_xml(tmp_path, slide_1024):
    p = tmp_path / 'gone.xml'
    raises(AnnotationError, lambda: read_asap_xml(p), str(p), 'does not exist')
    raises(AnnotationError, lambda: tile_slide(slide_1024, p, patch_px=64), str(p), 'does not exist')


@pytest.mark.parametrize('doc', [
    # billion laughs: nested entity expansion
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;">'
    '<!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;"><!ENTITY l4 "&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;">]>'
    '<ASAP_Annotations><Annotations><Annotation Name="&l4;"/></Annotations></ASAP_Annotations>',
    # external entity
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><ASAP_Annotations>&x;</ASAP_Annotations>',
])
def test_entity_expansion_refused(tmp_path, doc):
    p = tmp_path / 'entities.xml'; p.write_text(doc)
    raises(AnnotationError, lambda: read_asap_xml(p), str(p), 'refused')


def test_polygons_outside_slide(tmp_path, slide_1024):
    raises(AnnotationError, lambda: read_asap_xml(EXAMPLE_XML, dimensions=(500, 500)), str(EXAMPLE_XML), 'outside the slide')
    small = write_tiff_slide(tmp_path / 'small.tif', np.full((300, 300, 3), 240, np.uint8), mpp=0.5)
    raises(AnnotationError, lambda: tile_slide(small, EXAMPLE_XML, patch_px=64), 'example_annotation.xml', 'outside the slide')
    far = [Annotation('far', '_0', np.array([[-10.0, 5], [50, 5], [50, 60]]))]
    raises(AnnotationError, lambda: tile_slide(slide_1024, far, patch_px=64), 'known.tif', "'far'", 'outside the slide')


def test_not_asap_xml(tmp_path):
    p = tmp_path / 'other.xml'; p.write_text('<?xml version="1.0"?><html><body/></html>')
    raises(AnnotationError, lambda: read_asap_xml(p), str(p), 'not an ASAP annotation file')


# --- tiling ----------------------------------------------------------------------------------
def test_no_tissue_gives_empty_manifest(tmp_path):
    p = write_tiff_slide(tmp_path / 'blank.tif', np.full((512, 512, 3), 241, np.uint8), mpp=0.5)
    df = tile_slide(p, patch_px=64)
    assert len(df) == 0 and list(df.columns) == list(MANIFEST_COLUMNS)
    back = read_manifest(write_manifest(df, tmp_path / 'blank.parquet'))
    assert len(back) == 0 and list(back.columns) == list(MANIFEST_COLUMNS)
    assert export_patches(df, tmp_path / 'patches', progress=False) == []


def test_patch_larger_than_level(slide_1024):
    raises(SlideError, lambda: tile_slide(slide_1024, patch_px=2048), str(slide_1024.resolve()).split('/')[-1],
           'larger than the slide')
    raises(SlideError, lambda: tile_slide(slide_1024, patch_px=600, target_mpp=1.0), 'known.tif', 'patch of 600 px')


def test_output_folder_not_writable(tmp_path, slide_1024, monkeypatch):
    df = tile_slide(slide_1024, EXAMPLE_XML, patch_px=64, target_mpp=1.0)
    blocker = tmp_path / 'a_file'; blocker.write_text('x')
    # the parent of the output is a regular file: the folder cannot be created (root ignores chmod)
    raises(HistoError, lambda: write_manifest(df, blocker / 'm.parquet'), str(blocker), 'cannot create output folder')
    raises(HistoError, lambda: export_patches(df, blocker / 'patches', progress=False), 'a_file', 'cannot create output folder')
    # a folder the process may not write to
    ro = tmp_path / 'readonly'; ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, 'access', lambda p, mode, *a, **k: False if Path(p) == ro else real_access(p, mode, *a, **k))
    raises(HistoError, lambda: write_manifest(df, ro / 'm.parquet'), str(ro), 'not writable')
    raises(HistoError, lambda: export_patches(df, ro, progress=False), str(ro), 'not writable')
    assert list(ro.iterdir()) == []


def test_manifest_written_atomically(tmp_path, slide_1024, monkeypatch):
    "A write killed half-way leaves neither a manifest nor a temporary file."
    df = tile_slide(slide_1024, EXAMPLE_XML, patch_px=64, target_mpp=1.0)
    def killed(self, path, *a, **k):
        Path(path).write_bytes(b'PAR1 partial'); raise KeyboardInterrupt('killed')
    monkeypatch.setattr(pd.DataFrame, 'to_parquet', killed)
    with pytest.raises(KeyboardInterrupt): write_manifest(df, tmp_path / 'out' / 'known.parquet')
    assert list((tmp_path / 'out').iterdir()) == []


def test_bad_manifest(tmp_path):
    p = tmp_path / 'm.parquet'; p.write_bytes(b'garbage')
    raises(HistoError, lambda: read_manifest(p), str(p), 'not a readable parquet manifest')
    q = tmp_path / 'cols.parquet'; pd.DataFrame({'x': [1]}).to_parquet(q)
    raises(HistoError, lambda: read_manifest(q), str(q), 'missing columns')


def test_manifest_row_of_vanished_slide(tmp_path, slide_1024):
    p = tmp_path / 'moved.tif'; shutil.copy(slide_1024, p)
    df = tile_slide(p, patch_px=64, target_mpp=1.0)
    p.unlink()
    raises(SlideError, lambda: read_patch(df.iloc[0]), 'moved.tif', 'does not exist')


def test_real_slide_tissue():
    src = shared_data(*CMU)
    if src is None: pytest.skip(skip_reason(*CMU))
    df = tile_slide(src, patch_px=256)
    assert 0.2 < df.attrs['slide_tissue_fraction'] < 0.5
    corner = df[(df.x == 0) & (df.y == 0)]
    assert len(corner) == 0 or corner.tissue.item() <= 0.1
    assert (df.selection == 'healthy').sum() >= 10
    patch = read_patch(df[df.selection == 'healthy'].iloc[0])
    assert patch.shape == (256, 256, 3) and patch.mean() < 220     # real tissue, not background


def _pink_square():
    img = np.full((256, 256, 3), 200, np.uint8); img[50:200, 50:200] = (200, 90, 150)
    return img
