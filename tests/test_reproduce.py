"""The `demo` profile end to end at a reduced size (papermill parameter overrides): every notebook runs and Table 1
has every method's rows, all finite; a second run skips the finished steps."""
import os, json
from pathlib import Path
import numpy as np, pandas as pd, pytest

os.environ.setdefault('OMP_NUM_THREADS', '1')
from histo_i2i.reproduce import reproduce, load_profile, plan_steps, method_configs, PAPER_STEPS, OPTIONAL_STEPS
from histo_i2i.core import HistoError

REDUCED = [
    'prepare.demo_dataset.n_slides=2', 'prepare.demo_dataset.slide_px=1024', 'prepare.demo_dataset.patch_px=32',
    'prepare.demo_dataset.max_per_class=48',
    '01_preprocessing.synthetic_px=1024', '01_preprocessing.patch_px=32',
    'methods.translation.size=32', 'methods.translation.width=8', 'methods.translation.d_width=8', 'methods.translation.n_res=1',
    'methods.translation.iters=10', 'methods.translation.batch_size=4', '02_translation.valid_limit=48',
    'methods.ae.size=32', 'methods.ae.width=8', 'methods.ae.iters=10', 'methods.ae.batch_size=8',
    'methods.fanogan.size=32', 'methods.fanogan.width=8', 'methods.fanogan.iters=9', 'methods.fanogan.encoder_share=0.5', 'methods.fanogan.batch_size=8',
    'methods.stylegan2.size=32', 'methods.stylegan2.width=8', 'methods.stylegan2.iters=6', 'methods.stylegan2.projection_steps=5',
    'methods.stylegan2.batch_size=8', 'methods.supervised.iters=10', 'methods.supervised.batch_size=8',
    '03_baselines.limit=24', '03_baselines.projection_limit=8',
    '04_evaluation.n_boot=200',
    '05_slide_heatmap.slide_px=768', '05_slide_heatmap.compare_normal=false',
    '06_slides.n_boot=200',
]
TINY_TRAINING = [o for o in REDUCED if o.startswith(('methods.', '02_translation.', '03_baselines.', '04_evaluation.'))]


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


# The demo profile's settings as the notebooks built them when profiles held renamed notebook parameters
# (02_translation: d_width = width, checkpoint_every = min(500, iters // 2); 03_baselines: f-AnoGAN iterations =
# fanogan_iters + fanogan_encoder_iters with the encoder's share, 16-px tiles, the AE at n_down 2; 07_contamination: one
# settings dict filtered by each method's fields). The profile now writes config fields; the models must be the same.
OLD_DEMO = {
    '02_translation': dict(params=dict(valid_limit=400), methods=dict(
        translation=dict(size=32, width=16, d_width=16, n_res=2, batch_size=8, lr=1e-3, iters=800, minutes=0.0, score_style='exemplar',
                         n_exemplars=8, lpips_backbone='', seed=0, checkpoint_every=min(500, max(1, 800 // 2))))),
    '03_baselines': dict(params=dict(limit=200, projection_limit=60), methods=dict(
        ae=dict(size=32, width=max(8, 16), n_down=2, iters=400, batch_size=16, minutes=0.0, seed=0),
        fanogan=dict(iters=300 + 150, encoder_share=150 / (300 + 150), lr=5e-4, size=16, tiles=True, width=16, lpips_backbone='',
                     batch_size=16, minutes=0.0, seed=0),
        stylegan2=dict(iters=300, projection_steps=50, size=32, width=16, lpips_backbone='', batch_size=16, minutes=0.0, seed=0),
        supervised=dict(arch='small_cnn', iters=300, batch_size=16, minutes=0.0, seed=0),
        knn=dict(backbone='untrained', bank_fraction=0.02, seed=0))),
    '07_contamination': dict(params=dict(valid_limit=400, n_boot=1000), methods={
        m: {k: v for k, v in dict(size=32, width=16, d_width=16, n_res=2, n_down=2, iters=200, minutes=0.0, batch_size=8, lr=1e-3,
                                  lpips_backbone='', seed=0, checkpoint_every=min(500, max(1, 200 // 2))).items() if k in fields}
        for m, fields in (('translation', {'size', 'width', 'd_width', 'n_res', 'n_down', 'iters', 'minutes', 'batch_size', 'lr',
                                           'lpips_backbone', 'seed', 'checkpoint_every'}),
                          ('ae', {'size', 'width', 'n_down', 'iters', 'minutes', 'batch_size', 'lr', 'seed', 'checkpoint_every'}))}),
}

def test_demo_settings_unchanged():
    "The demo profile plans the same models and notebook parameters as before its settings were written as config fields."
    from histo_i2i.detector import METHODS
    for p in plan_steps('demo', steps=list(OLD_DEMO), out_dir='/tmp/histo_i2i_plan'):
        old = OLD_DEMO[p['step']]
        for k, v in old['params'].items(): assert p['parameters'][k] == v, (p['step'], k)
        new = method_configs(p['parameters']['methods'], seed=0)
        assert set(new) == set(old['methods']), p['step']
        for m, kw in old['methods'].items(): assert new[m] == METHODS[m].config_class(**kw), (p['step'], m)

def test_method_settings_from_every_route():
    "Any config field is set by --set methods.METHOD.FIELD (every step that trains it) or STEP.methods.METHOD.FIELD; a misspelt one is refused."
    plan = {p['step']: p['parameters']['methods'] for p in plan_steps('demo', overrides=['methods.translation.recon_ssim_w=2',
                                                                                             '07_contamination.methods.ae.lr=0.01'],
                                                                        steps=['02_translation', '07_contamination'], out_dir='/tmp/histo_i2i_plan')}
    assert plan['02_translation']['translation']['recon_ssim_w'] == 2.0 == plan['07_contamination']['translation']['recon_ssim_w']
    assert plan['07_contamination']['ae']['lr'] == 0.01 and 'lr' not in load_profile('demo')['methods']['ae']
    with pytest.raises(HistoError, match="no configuration field 'recon_ssim_wt' \\(did you mean 'recon_ssim_w'\\?\\); fields: "):
        plan_steps('demo', overrides=['methods.translation.recon_ssim_wt=2'])
    with pytest.raises(HistoError, match="written methods.METHOD.iters=VALUE"):
        plan_steps('demo', overrides=['02_translation.iters=2'])


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
                                 'methods.supervised.arch=small_cnn', '06_slides.patch_px=32', '06_slides.workers=0', '06_slides.n_boot=200']
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
        *[f'07_contamination.methods.{m}.{k}' for m in ('translation', 'ae') for k in ('iters=5', 'width=8', 'batch_size=4')],
        '07_contamination.methods.translation.d_width=8', '07_contamination.methods.translation.n_res=1',
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
