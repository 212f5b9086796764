"""The `demo` profile end to end at a reduced size (papermill parameter overrides): every notebook runs and Table 1
has every method's rows, all finite; a second run skips the finished steps."""
import os, json
from pathlib import Path
import numpy as np, pandas as pd, pytest

os.environ.setdefault('OMP_NUM_THREADS', '1')
from histo_i2i.reproduce import reproduce, load_profile, plan_steps, PAPER_STEPS, OPTIONAL_STEPS

REDUCED = [
    'prepare.demo_dataset.n_slides=2', 'prepare.demo_dataset.slide_px=1024', 'prepare.demo_dataset.patch_px=32',
    'prepare.demo_dataset.max_per_class=48',
    '01_preprocessing.synthetic_px=1024', '01_preprocessing.patch_px=32',
    '02_translation.size=32', '02_translation.width=8', '02_translation.n_res=1', '02_translation.iters=10',
    '02_translation.batch_size=4', '02_translation.valid_limit=48',
    '03_baselines.size=32', '03_baselines.width=8', '03_baselines.fanogan_iters=3', '03_baselines.fanogan_encoder_iters=6',
    '03_baselines.stylegan2_iters=6', '03_baselines.projection_steps=5', '03_baselines.supervised_iters=10',
    '03_baselines.batch_size=8', '03_baselines.limit=24', '03_baselines.projection_limit=8',
    '04_evaluation.n_boot=200',
    '05_slide_heatmap.slide_px=768', '05_slide_heatmap.compare_normal=false',
    '06_slides.n_boot=200',
]
TINY_TRAINING = [o for o in REDUCED if o.startswith(('02_translation.', '03_baselines.', '04_evaluation.'))]


def test_profiles_plan():
    "Every embedded profile names only parameters its notebooks declare."
    for name in ('demo', 'pcam', 'camelyon16', 'c16-40x'):
        prof = load_profile(name)
        assert prof['description']
        plan = plan_steps(prof, out_dir='/tmp/histo_i2i_plan')
        assert [p['step'] for p in plan] == list(prof['steps'])
        assert all(p['parameters']['out_dir'] == '/tmp/histo_i2i_plan' for p in plan)
        optional = [s for s in OPTIONAL_STEPS if s in prof['notebooks']]    # set in the profile, run only when named
        if optional: assert [p['step'] for p in plan_steps(prof, out_dir='/tmp/histo_i2i_plan', steps=optional)] == optional


def test_demo_reduced(tmp_path):
    out = tmp_path/'demo'
    report = reproduce('demo', overrides=REDUCED, out_dir=out, log=print)
    assert list(report.status) == ['done'] * len(PAPER_STEPS), report.to_string()
    for f in ('figure2.png', 'table.csv', 'table.md', 'figure3.png', 'curves.png', 'heatmap.png'):
        assert (out/f).exists(), f
    for step in PAPER_STEPS: assert (out/f'{step}.ipynb').exists()
    table = pd.read_csv(out/'table.csv')
    rows = set(zip(table.method, table.score))
    expected = {('supervised', 'p_cancer'), ('translation', 'ssim'), ('translation', 'lpips'), ('stylegan2', 'lpips'),
                ('stylegan2', 'ssim'), ('fanogan', 'original'), ('fanogan', 'ssim'), ('fanogan', 'lpips')}
    assert expected <= rows, rows
    assert np.isfinite(table[['auc', 'ap', 'f1', 'ca', 'auc_lo', 'auc_hi']].values).all(), table
    assert 'Proposed SSIM' in (out/'table.md').read_text()
    again = reproduce('demo', overrides=REDUCED, out_dir=out, log=print)
    assert list(again.status) == ['skipped'] * len(PAPER_STEPS)


def test_camelyon16_mini_tree(tmp_path):
    "The camelyon16 profile on a mini tree in the official layout: patch-level table, slides.csv (one row per test slide), froc.csv."
    from histo_i2i.camelyon16 import make_camelyon16_tree, camelyon16_slides
    root = make_camelyon16_tree(tmp_path/'CAMELYON16', n_slides=4, slide_px=2048, progress=False)
    out = tmp_path/'run'
    overrides = TINY_TRAINING + [f'root={root}', 'device=cpu', 'prepare.camelyon16.patch_px=32', 'prepare.camelyon16.n_workers=1',
                                 '03_baselines.supervised_arch=small_cnn', '06_slides.patch_px=32', '06_slides.workers=0', '06_slides.n_boot=200']
    report = reproduce('camelyon16', overrides=overrides, out_dir=out, log=print)
    assert list(report.status) == ['done'] * len(report), report.to_string()
    table = pd.read_csv(out/'table.csv')
    assert {'translation', 'fanogan', 'supervised'} <= set(table.method) and np.isfinite(table.auc).all()
    test = camelyon16_slides(root).query("split == 'test'")
    slides = pd.read_csv(out/'slides.csv')
    assert list(slides.columns) == ['slide', 'label', 'score'] and len(slides) == len(test)
    assert sorted(slides.label) == sorted(test.label) and np.isfinite(slides.score).all()
    froc = pd.read_csv(out/'froc.csv', index_col=0)
    assert list(froc.index.astype(str)) == ['0.25', '0.5', '1', '2', '4', '8', 'mean']
    assert froc.sensitivity.between(0, 1).all()
    assert set(pd.read_parquet(next((out/'manifests').glob('test_*.parquet'))).split) == {'test'}


def test_camelyon16_needs_root(tmp_path):
    from histo_i2i.core import HistoError
    with pytest.raises(HistoError, match='--set root=DIR'):
        reproduce('camelyon16', overrides=['device=cpu'], out_dir=tmp_path/'run', log=print)


def test_contamination_optional_step(tmp_path):
    "07_contamination is left out of the default steps and runs when named; one row per method, score and fraction, tumour counts to the patch."
    assert '07_contamination' not in load_profile('demo')['steps']
    out = tmp_path/'demo'
    overrides = [o for o in REDUCED if o.startswith('prepare.')] + [
        '07_contamination.iters=5', '07_contamination.width=8', '07_contamination.n_res=1', '07_contamination.batch_size=4',
        '07_contamination.valid_limit=32', '07_contamination.n_boot=50']
    report = reproduce('demo', overrides=overrides, out_dir=out, steps=['07_contamination'], log=print)
    assert list(report.step) == ['07_contamination'] and list(report.status) == ['done'], report.to_string()
    t = pd.read_csv(out/'contamination.csv')
    assert set(t.method) == {'translation', 'ae'} and sorted(set(t.fraction)) == [0, 0.01, 0.05, 0.1]
    assert len(t) == 4 * (5 + 2) and np.isfinite(t[['auc', 'auc_lo', 'auc_hi', 'ap']].values).all()   # per fraction: the translation model's 5 scores (ssim is the closest exemplar's, one name), the autoencoder's 2
    n_train = t.n_train.iloc[0]
    assert (t.n_tumour == np.floor(t.fraction * n_train + 0.5)).all() and (t.n == 32).all()
    assert (out/'contamination.png').stat().st_size > 1000 and (out/'contamination'/'tumour_data'/'demo_dataset.json').exists()
    again = reproduce('demo', overrides=overrides, out_dir=out, steps=['07_contamination'], log=print)
    assert list(again.status) == ['skipped']
