"""Write README.md from nbs/index.ipynb (settings.ini `readme_nb`), offline.

    python tools/readme.py [--check]

`nbdev_readme` renders the README with Quarto; where Quarto is not installed this does the same for the front page:
markdown cells as they are, code cells as ```python blocks, cells marked `#| echo: false` as their stored output
(text/markdown, else text/plain), `#| hide` and `#| eval: false`-only directives dropped. Links to notebooks become
links to their pages on the documentation site, and `images/` paths point into `nbs/images/`. `--check` (and
tests/test_readme.py) fails when README.md is not what index.ipynb gives: edit index.ipynb, run `make readme`.
"""
from __future__ import annotations
import argparse, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _src(c) -> str: return ''.join(c['source']) if isinstance(c['source'], list) else c['source']


def page_url(nb:str, site:str) -> str:
    "Site address of a notebook, as nbdev names pages: `paper/08_real_tissue.ipynb` -> SITE/paper/real_tissue.html."
    parts = [re.sub(r'^\d+[a-z]?_', '', p) for p in Path(nb).with_suffix('.html').parts]
    return site.rstrip('/') + '/' + '/'.join(parts)


def _links(md:str, site:str) -> str:
    md = re.sub(r'\]\(([^)\s#]+\.ipynb)(#[^)]*)?\)', lambda m: f"]({page_url(m[1], site)}{m[2] or ''})", md)
    return re.sub(r'\]\(images/', '](nbs/images/', md)


def _directives(code:str) -> tuple[set, str]:
    lines = code.splitlines()
    d = {l[3:].strip().replace(' ', '') for l in lines if l.startswith('#|')}
    return d, '\n'.join(l for l in lines if not l.startswith('#|')).strip()


def readme_text(nb_path=None, site:str|None=None) -> str:
    "README.md's text from the front-page notebook and its stored outputs."
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    site = site or f"{cfg.doc_host.rstrip('/')}{cfg.doc_baseurl}"
    nb = json.loads(Path(nb_path or ROOT/'nbs'/cfg.readme_nb).read_text(encoding='utf-8'))
    out = []
    for c in nb['cells']:
        if c['cell_type'] == 'markdown': out.append(_links(_src(c).strip(), site)); continue
        if c['cell_type'] != 'code': continue
        d, code = _directives(_src(c))
        if 'hide' in d: continue
        if 'echo:false' in d:
            for o in c.get('outputs', []):
                data = o.get('data', {})
                if 'text/markdown' in data: out.append(_links(_src({'source': data['text/markdown']}).strip(), site))
                elif 'text/plain' in data: out.append('```\n' + _src({'source': data['text/plain']}).strip() + '\n```')
        elif code: out.append(f"```python\n{code}\n```")
    return '\n\n'.join(p for p in out if p) + '\n'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--check', action='store_true', help='fail when README.md differs instead of writing it')
    a = ap.parse_args(argv)
    text, readme = readme_text(), ROOT/'README.md'
    if a.check:
        if readme.read_text(encoding='utf-8') != text:
            print("README.md is not what nbs/index.ipynb gives: edit index.ipynb, then `make readme`", file=sys.stderr); return 1
        return 0
    readme.write_text(text, encoding='utf-8'); print(f"wrote {readme} ({len(text.encode())} bytes)")
    return 0


if __name__ == '__main__': sys.exit(main())
