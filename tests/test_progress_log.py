"""Progress in a log: `histo-i2i train` on a time budget with its output sent to a file (as on a cluster) writes plain
lines, one per 5 % of the budget or 30 s, with no carriage returns, no fastai table and no `Epoch 1/1000000`."""
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent/'histo-i2i'


def test_timed_train_log(tmp_path):
    from histo_i2i.batch import make_demo_dataset
    data = make_demo_dataset(tmp_path/'demo', n_slides=2, slide_px=768, progress=False)
    log = tmp_path/'train.log'
    cmd = [str(EXE), 'train', '--data', str(data), '--out', str(tmp_path/'run'), '--minutes', '0.15', '--size', '32',
           '--width', '8', '--batch-size', '4', '--opt', 'd_width=8', '--opt', 'mlp_dim=16', '--opt', 'n_res=1', '--device', 'cpu']
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    with open(log, 'w') as f: rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=300).returncode
    text = log.read_text()
    assert rc == 0, text
    lines = [l for l in text.splitlines() if l.startswith('train ')]
    assert '\r' not in text and '1000000' not in text and 'Epoch' not in text and 'train_loss' not in text, text
    assert 5 <= len(lines) <= 22, text                                   # one per 5 % (and at the end), nothing more
    assert '(100 %)' in lines[-1] and ' it/s | ' in lines[-1] and 'gen=' in lines[-1], lines[-1]
    assert len(text) < 20_000
