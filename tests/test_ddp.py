"""Training one model on two CPU processes (gloo) launched by torchrun: `histo-i2i train` as a user runs it, and the
library run straight and interrupted-then-resumed, with each process reporting the patches it trained on and a checksum
of its weights."""
import hashlib, json, os, subprocess, sys, textwrap
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from histo_i2i.data import patch_dataset, TrainingSampler
from histo_i2i.checkpoint import load_checkpoint
from histo_i2i.engine import read_history

ROOT = Path(__file__).resolve().parent.parent
BATCH, ITERS = 4, 4                       # the global batch; two processes draw 2 patches each

SCRIPT = textwrap.dedent('''
    import hashlib, json, os, sys
    from pathlib import Path
    import torch
    from fastai.callback.core import Callback
    from histo_i2i.cli import main
    from histo_i2i.methods.ae import AEDetector
    from histo_i2i.data import patch_dataset
    data, out, batch, iters = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rank = int(os.environ['RANK'])
    def digest(t): return hashlib.sha1(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
    def checksum(det): return digest(torch.cat([v.double().reshape(-1) for k, v in sorted(det.net.state_dict().items())]))
    class Seen(Callback):                 # the raw patches of each iteration, before the engine prepares them
        order = 10
        def __init__(self): self.batches = []
        def before_batch(self): self.batches.append([digest(x) for x in self.xb[0]])
    rc = main(['train', '--data', data, '--out', out/'cli', '--method', 'ae', '--iters', '3', '--width', '8', '--size', '32',
               '--batch-size', str(batch), '--device', 'cpu'])
    kw = dict(width=8, size=32, batch_size=batch, checkpoint_every=2, device='cpu')
    train = patch_dataset(data, split='train', labels=(0,))
    seen = Seen()
    full, ran = AEDetector(iters=iters, **kw), set()   # the dtype and layout each convolution ran in (as on CUDA: bf16, channels-last)
    for m in full.net.modules():
        if isinstance(m, torch.nn.Conv2d): m.register_forward_hook(lambda m, i, o: ran.add((str(o.dtype), i[0].is_contiguous(memory_format=torch.channels_last))))
    full.fit(train, run_dir=out/'full', progress=False, cbs=[seen])
    AEDetector(iters=iters // 2, **kw).fit(train, run_dir=out/'resumed', progress=False)
    resumed = AEDetector(iters=iters, **kw).fit(train, run_dir=out/'resumed', progress=False)
    (out/f'rank{rank}.json').write_text(json.dumps(dict(rc=rc, seen=seen.batches, full=checksum(full), resumed=checksum(resumed),
                                                      steps=[full.step, resumed.step], ran=sorted(ran))))
''')


def _digest(t): return hashlib.sha1(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


@pytest.fixture(scope='module')
def ddp_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ddp')
    data = tmp/'patches'
    (data/'train'/'0').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):                   # distinct healthy patches
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data/'train'/'0'/f'p{i:02d}.png')
    (tmp/'run.py').write_text(SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT), 'CUDA_VISIBLE_DEVICES': ''}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(tmp/'run.py'),
           str(data), str(tmp/'out'), str(BATCH), str(ITERS)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ranks = [json.loads((tmp/'out'/f'rank{k}.json').read_text()) for k in range(2)]
    return data, tmp/'out', ranks, r.stdout


def test_cli_run_writes_one_checkpoint_and_history(ddp_run):
    data, out, ranks, stdout = ddp_run
    assert [r['rc'] for r in ranks] == [0, 0]
    assert sorted(p.name for p in (out/'cli').iterdir()) == ['checkpoint.pt', 'history.csv']
    cfg = load_checkpoint(out/'cli')['config']
    assert (cfg['world_size'], cfg['batch_size'], load_checkpoint(out/'cli')['step']) == (2, BATCH, 3)
    assert [h['step'] for h in read_history(out/'cli')] == [1, 2, 3]
    ck = load_checkpoint(out/'full')['state']['train']
    assert len(ck['rng_ranks']) == 2    # each process's random stream, to resume it


def test_each_process_trains_on_its_share_of_the_global_batch(ddp_run):
    data, out, ranks, _ = ddp_run
    cfg = load_checkpoint(out/'full')['config']
    assert cfg['world_size'] == 2 and cfg['batch_size'] == BATCH
    ds = patch_dataset(data, split='train', labels=(0,))
    smp = TrainingSampler(len(ds), cfg['batch_size'], seed=cfg['seed'])
    a, b = ranks[0]['seen'], ranks[1]['seen']
    assert len(a) == len(b) == ITERS
    for step, (pa, pb) in enumerate(zip(a, b)):
        assert len(pa) == len(pb) == BATCH // cfg['world_size']
        assert not set(pa) & set(pb)
        assert sorted(pa + pb) == sorted(_digest(ds[i][0]) for i in smp.indices(step))   # together: the global batch


def test_weights_agree_across_processes_and_resume(ddp_run):
    _, out, ranks, _ = ddp_run
    assert [r['steps'] for r in ranks] == [[ITERS, ITERS]] * 2
    assert ranks[0]['full'] == ranks[1]['full']
    assert ranks[0]['resumed'] == ranks[1]['resumed']
    assert ranks[0]['resumed'] == ranks[0]['full']         # interrupted and resumed = uninterrupted
    assert read_history(out/'resumed') == read_history(out/'full')
    assert [h['step'] for h in read_history(out/'full')] == list(range(1, ITERS + 1))


def test_each_process_trains_in_the_configured_precision_and_layout(ddp_run):
    from histo_i2i.detector import bf16_supported
    want = 'torch.bfloat16' if bf16_supported('cpu') else 'torch.float32'
    for r in ddp_run[2]:
        assert want in {d for d, _ in r['ran']} and any(cl for _, cl in r['ran'])
