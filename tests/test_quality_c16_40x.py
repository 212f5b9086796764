"The c16-40x profile's floors and feature k-NN through bench/quality.py on the real 40x patches (skipped when they are absent)."
import sys
from pathlib import Path
import pandas as pd
import pytest

from histo_i2i.core import shared_data, skip_reason

C16 = shared_data('c16-40x')
pytestmark = pytest.mark.skipif(C16 is None, reason=skip_reason('c16-40x'))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'bench'))


def test_floors_and_knn(tmp_path):
    from quality import main
    # the floor on all 500 healthy train patches and all of valid; knn with the profile's settings
    assert main(['--profile', 'c16-40x', '--data', str(C16), '--split', 'valid', '--methods', 'knn', '--n-boot', '50',
                 '--out', str(tmp_path)]) == 0
    t = pd.read_csv(tmp_path/'table.csv').set_index('method')
    assert {'saturation', 'colour', 'blur', 'knn_floor', 'knn'} <= set(t.index)
    assert (t.n == 144).all()
    assert abs(t.auc['knn_floor'] - 0.880) <= 0.01, t.auc['knn_floor']
    assert t.feature_backbone['knn_floor'] == 'untrained/seed0' and t.feature_backbone['knn'] == 'untrained/seed0'
    assert 0.5 < t.auc['knn'] <= 1 and t.auc_lo['knn'] <= t.auc['knn'] <= t.auc_hi['knn']
    assert 'k-NN floor' in (tmp_path/'table.md').read_text()
