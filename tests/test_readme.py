"""README.md is generated from nbs/index.ipynb (`make readme`, tools/readme.py): the two never differ, and it stays a front page."""
import sys
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.readme import readme_text, page_url


def test_readme_is_index():
    assert (ROOT/'README.md').read_text(encoding='utf-8') == readme_text(), \
        "README.md is not what nbs/index.ipynb gives: edit nbs/index.ipynb, then run `make readme`"


def test_front_page():
    text = readme_text()
    assert len(text.encode()) < 12_000, f"README.md is {len(text.encode())} bytes; keep it a front page"
    assert '```python' in text and 'histo-i2i train' in text and 'make reproduce' in text and 'make test' in text
    assert '| Data | Proposed' in text and '.ipynb)' not in text


def test_page_url():
    assert page_url('paper/08_real_tissue.ipynb', 'https://x.io/site') == 'https://x.io/site/paper/real_tissue.html'
    assert page_url('06a_camelyon16.ipynb', 'https://x.io/site/') == 'https://x.io/site/camelyon16.html'
