"""End to end through the command line on tiny synthetic slides: tile -> train -> score -> heatmap, and bad input."""
import os, subprocess, sys, json, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest

os.environ.setdefault('OMP_NUM_THREADS', '1')
from histo_i2i.cli import main

EXE = shutil.which('histo-i2i', path=str(Path(sys.executable).parent)) or shutil.which('histo-i2i')


def run_cli(*args):
    "Run the installed console script; (exit status, stdout, stderr)."
    assert EXE, "the histo-i2i console script is not installed (pip install -e .)"
    r = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'})
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope='module')
def slides(tmp_path_factory):
    from histo_i2i.synth import make_synthetic_slide
    d = tmp_path_factory.mktemp('slides')
    normal = make_synthetic_slide(d/'normal.tif', 768, 768, tumour=False, seed=1)
    tumour = make_synthetic_slide(d/'tumour.tif', 768, 768, tumour=True, seed=2)
    return d, normal, tumour


@pytest.fixture(scope='module')
def manifests(slides, tmp_path_factory):
    d, normal, tumour = slides
    out = tmp_path_factory.mktemp('manifests')
    bad = d/'broken.tif'; bad.write_bytes(b'not a slide at all')
    rc, so, se = run_cli('tile', normal.path, tumour.path, bad, '--out', out, '--patch-px', 32, '--workers', 1)
    assert rc == 1, (so, se)                          # one slide failed: non-zero, but the others are done
    assert 'broken' in so and 'failed' in so
    assert (out/'normal.parquet').exists() and (out/'tumour.parquet').exists()
    assert not (out/'broken.parquet').exists()
    return out


def test_tile_resumes(slides, manifests, capsys):
    d, normal, tumour = slides
    assert main(['tile', normal.path, tumour.path, '--out', manifests, '--patch-px', 32, '--workers', 1]) == 0
    assert capsys.readouterr().out.count('skipped') == 2   # existing manifests are skipped


def test_train_score_heatmap(slides, manifests, tmp_path, capsys):
    d, normal, tumour = slides
    run = tmp_path/'run'
    assert main(['train', '--data', manifests/'normal.parquet', '--out', run, '--method', 'translation', '--size', '32',
                 '--iters', '4', '--width', '8', '--batch-size', '4', '--device', 'cpu', '--opt', 'd_width=8',
                 '--opt', 'mlp_dim=16', '--opt', 'n_res=1']) == 0
    assert (run/'checkpoint.pt').exists()
    scores = tmp_path/'scores_translation.csv'
    assert main(['score', '--model', run, '--data', manifests/'tumour.parquet', '--out', scores, '--device', 'cpu']) == 0
    df = pd.read_csv(scores)
    assert list(df.columns)[:4] == ['path', 'label', 'score_ssim', 'score_lpips']
    assert set(df.label) == {0, 1} and np.isfinite(df.filter(like='score_').values).all()
    meta = json.loads(scores.with_suffix('.json').read_text())
    assert meta['method'] == 'translation' and meta['lpips_backbone']

    png = tmp_path/'heat.png'
    assert main(['heatmap', '--model', run, '--slide', tumour.path, '--annotation', tumour.xml_path, '--out', png,
                 '--device', 'cpu']) == 0
    assert png.stat().st_size > 1000
    patches = pd.read_csv(png.with_suffix('.csv'))
    assert len(patches) > 10 and np.isfinite(patches.score_ssim).all()
    assert 'slide score' in capsys.readouterr().out


def test_colour_floor_separates(manifests, tmp_path):
    "The colour floor through train/score on manifests: cancerous patches score higher on average."
    run = tmp_path/'colour'
    assert main(['train', '--data', manifests/'normal.parquet', '--out', run, '--method', 'colour']) == 0
    out = tmp_path/'scores_colour.csv'
    assert main(['score', '--model', run, '--data', manifests/'tumour.parquet', '--out', out]) == 0
    df = pd.read_csv(out)
    assert df[df.label == 1].score_colour.mean() > df[df.label == 0].score_colour.mean()


def test_bad_input_one_line_error(tmp_path, capsys):
    rc, so, se = run_cli('score', '--model', tmp_path/'missing_run', '--data', tmp_path, '--out', tmp_path/'s.csv')
    assert rc == 2 and 'missing_run' in se and len(se.strip().splitlines()) == 1, se
    for argv, words in ((['train', '--data', tmp_path/'nothing', '--out', tmp_path/'r', '--method', 'nonsense'], 'nonsense'),
                        (['train', '--data', tmp_path/'nothing', '--out', tmp_path/'r', '--method', 'colour'], 'nothing'),
                        (['reproduce', '--profile', 'no_such_profile'], 'no such profile')):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err


def test_heatmap_batch(slides, manifests, tmp_path, capsys):
    "Many slides on dask: a corrupt one fails alone, a rerun skips finished slides, other settings score them again."
    d, normal, tumour = slides
    run = tmp_path/'colour'
    assert main(['train', '--data', manifests/'normal.parquet', '--out', run, '--method', 'colour']) == 0
    corrupt = tmp_path/'corrupt.tif'
    corrupt.write_bytes(tumour.path.read_bytes()[:4096])                      # a truncated slide file
    labels = tmp_path/'labels.csv'
    labels.write_text('slide,label\nnormal,0\ntumour,1\n')
    out = tmp_path/'heatmaps'
    args = ['heatmap', normal.path, tumour.path, corrupt, '--model', run, '--out', out, '--patch-px', 32, '--labels', labels]
    rc, so, se = run_cli(*args, '--workers', 1)                               # a local dask cluster of one worker
    assert rc == 1 and '1 of 3 slides failed' in se, (so, se)
    rep = pd.read_csv(out/'slides.csv', keep_default_na=False)
    assert list(rep.columns[:10]) == ['slide', 'label', 'score', 'status', 'error', 'n_patches', 'seconds', 'heatmap', 'patches', 'note']
    assert list(rep.status) == ['done', 'done', 'failed'] and list(rep.label) == ['0', '1', '']
    assert 'corrupt.tif' in rep.error[2] and rep.n_patches[0] > 10
    assert float(rep.score[1]) > float(rep.score[0]) and rep.score[1] == rep.score_colour[1]   # the tumour slide scores higher
    for stem in ('normal', 'tumour'):
        assert (out/f'{stem}.png').stat().st_size > 1000 and (out/f'{stem}.json').exists()
        patches = pd.read_csv(out/f'{stem}.csv')
        assert {'x', 'y', 'score_colour'} <= set(patches.columns) and np.isfinite(patches.score_colour).all()
    assert not (out/'corrupt.png').exists()

    capsys.readouterr()
    assert main([*args, '--workers', 0]) == 1                                  # rerun: finished slides are skipped
    assert capsys.readouterr().out.count('skipped') == 2
    again = pd.read_csv(out/'slides.csv', keep_default_na=False)
    assert list(again.status) == ['done', 'done', 'failed'] and list(again.score[:2]) == list(rep.score[:2])

    assert main(['heatmap', normal.path, tumour.path, '--model', run, '--out', out, '--patch-px', 32, '--top-k', 3, '--workers', 0]) == 0
    assert capsys.readouterr().out.count('scored again: the settings changed: top_k 10 -> 3') == 2
    rep3 = pd.read_csv(out/'slides.csv', keep_default_na=False)
    assert list(rep3.status) == ['failed', 'done', 'done'] and list(rep3.note[1:]) == ['scored again: the settings changed: top_k 10 -> 3'] * 2

    one = tmp_path/'one.png'                                                   # one SLIDE and an image name: that heatmap alone
    assert main(['heatmap', tumour.path, '--model', run, '--out', one, '--patch-px', 32, '--workers', 0]) == 0
    assert one.stat().st_size > 1000 and one.with_suffix('.csv').exists()
    assert main(['heatmap', normal.path, tumour.path, '--model', run, '--out', one]) == 2
    assert 'an image name, which holds the heatmap of one slide; give a folder for 2 slides' in capsys.readouterr().err
