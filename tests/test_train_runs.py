"""`histo-i2i train` run folders: every trained method resumes through the engine (steps 1…8 once each in
history.csv after --iters 4 then --iters 8), other settings in the same folder are refused naming the fields,
and bad training options end with one clear line, exit status 2 and no traceback."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from histo_i2i.cli import main
from histo_i2i.detector import METHODS
from histo_i2i.engine import Trainable

TRAINED = [m for m in METHODS if issubclass(METHODS[m], Trainable)]
TINY = {m: [a for k, v in METHODS[m].tiny.items() for a in ('--opt', f'{k}={json.dumps(v)}')] for m in TRAINED}   # each method's smoke-test settings

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A PCam-layout folder of 32-px patches with both classes in train and valid."
    root, rng = tmp_path_factory.mktemp('pcam'), np.random.default_rng(0)
    for split in ('train', 'valid'):
        for lab in (0, 1):
            d = root/split/str(lab); d.mkdir(parents=True)
            for i in range(12):
                base = np.array([230, 150, 200]) if lab == 0 else np.array([150, 80, 170])
                Image.fromarray(np.clip(base + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)).save(d/f'{i}.png')
    return root

EXE = shutil.which('histo-i2i') or str(Path(sys.executable).with_name('histo-i2i'))

def run_cli(*argv):
    "The installed console script: (exit status, stdout, stderr)."
    p = subprocess.run([EXE, *map(str, argv)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'})
    return p.returncode, p.stdout, p.stderr

@pytest.mark.parametrize('method', list(TINY))
def test_train_resumes(method, data, tmp_path, capsys):
    torch.set_num_threads(1)
    run = tmp_path/method
    args = ['train', '--method', method, '--data', data, '--out', run, '--device', 'cpu', *TINY[method]]
    assert main([*args, '--iters', '4']) == 0
    assert pd.read_csv(run/'history.csv').step.tolist() == [1, 2, 3, 4]
    assert torch.load(run/'checkpoint.pt', weights_only=True)['step'] == 4
    assert main([*args, '--iters', '8']) == 0
    h = pd.read_csv(run/'history.csv')
    assert h.step.tolist() == list(range(1, 9)) and h.drop(columns='step').notna().any(axis=1).all()
    assert torch.load(run/'checkpoint.pt', weights_only=True)['step'] == 8
    assert main(['score', '--model', run, '--data', data, '--out', tmp_path/'scores.csv']) == 0
    assert np.isfinite(pd.read_csv(tmp_path/'scores.csv').filter(like='score_').values).all()

def test_spent_minutes_train_nothing(data, tmp_path):
    "A run resumed with a minute budget its earlier sessions already spent trains no further iteration (as with iterations)."
    torch.set_num_threads(1)
    run = tmp_path/'ae'
    args = ['train', '--method', 'ae', '--data', data, '--out', run, '--device', 'cpu', *TINY['ae'], '--minutes', '0.01']
    assert main(args) == 0
    step = torch.load(run/'checkpoint.pt', weights_only=True)['step']
    assert step >= 1
    assert main(args) == 0
    assert torch.load(run/'checkpoint.pt', weights_only=True)['step'] == step
    assert main([*args[:-1], '0.05']) == 0 and torch.load(run/'checkpoint.pt', weights_only=True)['step'] > step   # a larger budget extends it

def test_other_settings_refused(data, tmp_path):
    run = tmp_path/'ae'
    base = ['train', '--method', 'ae', '--data', data, '--out', run, '--iters', '2', '--device', 'cpu', '--size', '32', '--opt', 'n_down=2']
    assert main([*base, '--width', '4', '--batch-size', '4']) == 0
    for extra, words in ((['--width', '4', '--batch-size', '8'], 'other settings (batch_size 4 -> 8)'),
                         (['--width', '8', '--batch-size', '4'], 'other settings (width 4 -> 8)'),
                         (['--width', '4', '--batch-size', '4', '--opt', 'lr=0.01'], 'other settings (lr 0.001 -> 0.01)')):
        rc, _, err = run_cli(*base, *extra)
        assert rc == 2 and words in err and '--overwrite' in err and 'Traceback' not in err, err
    assert main([*base, '--width', '8', '--batch-size', '4', '--overwrite']) == 0
    assert torch.load(run/'checkpoint.pt', weights_only=True)['config']['width'] == 8

@pytest.mark.parametrize('extra, words', [
    (['--iters', '0'], '--iters'), (['--iters', '-3'], '--iters'), (['--batch-size', '0'], '--batch-size'),
    (['--size', '4'], '--size'), (['--opt', 'lr=abc'], "lr takes a float"), (['--opt', 'nonsense=1'], "no configuration field 'nonsense'"),
    (['--device', 'gpu0'], "'gpu0' is not a device name"), (['--limit', '0'], '--limit'), (['--minutes', '-1'], '--minutes'),
    (['--method', 'nonsense'], "unknown method 'nonsense'")])
def test_bad_training_options(extra, words, data, tmp_path):
    rc, _, err = run_cli('train', '--data', data, '--out', tmp_path/'r', '--method', 'ae', *extra)
    assert rc == 2 and words in err and 'Traceback' not in err, err

def test_translation_stores_the_ssl_backbone(data, tmp_path):
    "A translation model given an ssl run copies its backbone into its own checkpoint and scores the ssl distances without that run."
    torch.set_num_threads(1)
    ssl_run, run = tmp_path/'ssl', tmp_path/'translation'
    assert main(['train', '--method', 'ssl', '--data', data, '--out', ssl_run, '--device', 'cpu', '--iters', '3', *TINY['ssl']]) == 0
    assert main(['train', '--data', data, '--out', run, '--device', 'cpu', '--iters', '2', *TINY['translation'], '--opt', f'ssl_model={ssl_run}']) == 0
    shutil.rmtree(ssl_run)
    ck = torch.load(run/'checkpoint.pt', weights_only=True)
    assert ck['config']['ssl_backbone'] == {'width': 4, 'n_stages': 2, 'norm': 'bn'} and 'stages.1.1.conv.weight' in ck['state']['ssl_backbone']
    assert main(['score', '--model', run, '--data', data, '--out', tmp_path/'scores.csv']) == 0
    df = pd.read_csv(tmp_path/'scores.csv')
    cols = ['score_ssl', 'score_ssl_own', 'score_ssl_random']
    assert set(cols) <= set(df.columns) and np.isfinite(df[cols].values).all() and (df[cols].values > 0).all()

def test_missing_ssl_model_is_named(data, tmp_path):
    missing = tmp_path/'no_such_run'
    rc, _, err = run_cli('train', '--data', data, '--out', tmp_path/'r', '--iters', '1', *TINY['translation'], '--opt', f'ssl_model={missing}')
    assert rc == 2 and f"ssl_model = '{missing}'" in err and '--method ssl' in err and 'Traceback' not in err, err
    assert not (tmp_path/'r'/'checkpoint.pt').exists()

def test_cuda_without_a_gpu(data, tmp_path):
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU')
    rc, _, err = run_cli('train', '--data', data, '--out', tmp_path/'r', '--method', 'ae', '--device', 'cuda')
    assert rc == 2 and 'no such CUDA device' in err and 'Traceback' not in err, err

def test_out_paths_refused_before_work(data, tmp_path):
    (tmp_path/'file').write_text('x')
    rc, _, err = run_cli('train', '--data', data, '--out', tmp_path/'file', '--method', 'ae')
    assert rc == 2 and '--out is a file' in err, err
    run = tmp_path/'colour'
    assert main(['train', '--data', data, '--out', run, '--method', 'colour']) == 0
    for out in (tmp_path, f"{tmp_path/'new_dir'}/"):
        rc, _, err = run_cli('score', '--model', run, '--data', data, '--out', out)
        assert rc == 2 and '--out is a folder' in err and 'Traceback' not in err, err
