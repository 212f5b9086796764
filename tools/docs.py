"""Build the documentation site from the notebooks into `_docs/`, offline.

    python tools/docs.py [--out _docs] [--workers 2] [--strict]

Each notebook listed in `nbs/sidebar.yml` (plus any it misses, under "More") goes through nbdev's own processors, as
`nbdev_docs` does: front matter from the title cell, `show_doc` for every exported function, exported and hidden cells
removed, names in backticks linked to their pages. The processed notebooks, stored outputs included, are then written
as static HTML pages with the sidebar of `nbs/sidebar.yml`, named as nbdev and Quarto name them (`00_core.ipynb` ->
`core.html`). Links to other notebooks and to the site's own address become relative links, so the site works from
the file system. Nothing is downloaded and no notebook is executed beyond the cells `show_doc` needs.
"""
from __future__ import annotations
import argparse, ast, html, os, re, shutil, sys, tempfile, time, warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ('.png', '.jpg', '.jpeg', '.gif', '.svg', '.css')


class DocsError(Exception): pass


def page_name(rel:str) -> str:
    "Site path of a notebook, as nbdev's links and Quarto name it: `paper/01_preprocessing.ipynb` -> `paper/preprocessing.html`."
    from nbdev.doclinks import _nbpath2html
    return _nbpath2html(Path(rel)).as_posix()


def _skip_dir(p:Path) -> bool: return any(part.startswith(('_', '.')) for part in p.parts[:-1])


def all_notebooks(nbs:Path) -> list[str]:
    return sorted(p.relative_to(nbs).as_posix() for p in nbs.rglob('*.ipynb')
                  if not _skip_dir(p.relative_to(nbs)) and '.ipynb_checkpoints' not in p.parts)


def read_sidebar(nbs:Path) -> list[tuple[str|None, list[str]]]:
    "[(section title or None, [notebook paths])] in the order of `sidebar.yml`."
    import yaml
    f = nbs/'sidebar.yml'
    if not f.exists(): raise DocsError(f"{f} is missing: it lists the site's pages in pipeline order")
    try: contents = yaml.safe_load(f.read_text())['website']['sidebar']['contents']
    except Exception as e: raise DocsError(f"{f}: expected website: sidebar: contents: [...] ({e})") from e
    out = []
    def walk(items, title):
        group = (title, [])
        out.append(group)
        for it in items:
            if isinstance(it, str): group[1].append(it)
            elif isinstance(it, dict) and 'section' in it: walk(it.get('contents', []), it['section'])
            elif isinstance(it, dict) and 'href' in it: group[1].append(it['href'])
            else: raise DocsError(f"{f}: cannot read sidebar entry {it!r}")
    walk(contents, None)
    return [g for g in out if g[1]]


def site_plan(nbs:Path, log=print) -> list[tuple[str|None, list[str]]]:
    "The sidebar, less entries whose notebook is gone, plus notebooks it does not list (each reported)."
    groups, found = read_sidebar(nbs), all_notebooks(nbs)
    listed = [n for _, ns in groups for n in ns]
    for n in listed:
        if n not in found: log(f"warning: nbs/sidebar.yml lists {n}, which does not exist: left out")
    groups = [(t, [n for n in ns if n in found]) for t, ns in groups]
    extra = [n for n in found if n not in listed]
    for n in extra: log(f"warning: nbs/sidebar.yml does not list {n}: shown under 'More'")
    if extra: groups.append(('More', extra))
    return [g for g in groups if g[1]]


# ---------------------------------------------------------------- processing (one process per worker, like nbdev)
def _process(args):
    "Run nbdev's doc processors over one notebook; returns (rel, notebook dict, problems, cells run for imports only)."
    src, rel, strict = args
    os.environ['IN_TEST'] = '1'
    os.chdir(Path(src).parent)
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults, exec_show_docs, _do_eval, _show_docs
    problems, mixed = [], []

    class show_docs_only(exec_show_docs):
        """nbdev's exec_show_docs, except that a cell mixing imports and other code (nbdev runs it whole) runs only its
        imports, and that a failing cell is reported instead of stopping the site unless `strict`."""
        def __call__(self, cell):
            if not getattr(self.nb, 'has_docs_', None) or not hasattr(self, 'k'): return
            if str(getattr(self.nb, 'frontmatter_', {}).get('skip_showdoc', '')).lower() in ('true', '1', 'yes'): return
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                if not _do_eval(cell): return
            trees = cell.parsed_()
            imports = [t for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))]
            if cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'} or _show_docs(trees) or len(imports) == len(trees):
                self.k.cell(cell)
            else:
                mixed.append(rel); self.k.run_cell('\n'.join(ast.unparse(t) for t in imports))
            if self.k.exc:
                if strict: raise Exception(f"{rel}: cell {cell.idx_} failed:\n{cell.source}") from self.k.exc
                first = (cell.source or '').strip().splitlines()[:1]
                problems.append(f"{rel}: cell {cell.idx_} ({first[0][:60] if first else ''}) failed while preparing "
                                f"show_doc: {type(self.k.exc).__name__}: {str(self.k.exc).splitlines()[0] if str(self.k.exc) else ''}")

    class Procs(FilterDefaults):
        def base_procs(self): return [show_docs_only if p is exec_show_docs else p for p in super().base_procs()]

    nb = read_nb(src)
    nb.path_ = str(src)
    Procs()(nb)
    from execnb.nbio import nb2dict
    return rel, nb2dict(nb), problems, len(mixed)


# ---------------------------------------------------------------- rendering
_FENCE = re.compile(r'^:::.*$', re.M)
_ATTRS = re.compile(r'(\]\([^)]*\))\{[^}]*\}')
_ANSI = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')
_OPT = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
_HREF = re.compile(r'''(\s(?:href|src)=)(["'])(.*?)\2''')


def _md_source(src:str) -> str:
    "Quarto-only syntax that plain markdown would print: fenced-div lines, `{target=...}` after links."
    return _ATTRS.sub(r'\1', _FENCE.sub('', src))


def _text(v) -> str: return ''.join(v) if isinstance(v, list) else (v or '')


def _slug(s:str) -> str: return re.sub(r'[^\w]+', '-', re.sub(r'<[^>]+>', '', s).lower()).strip('-')


def _markdown():
    import mistune
    from pygments import highlight
    from pygments.lexers import get_lexer_by_name, TextLexer
    from pygments.formatters import HtmlFormatter

    class Renderer(mistune.HTMLRenderer):
        def heading(self, text, level, **attrs):
            return f'<h{level} id="{_slug(text)}">{text}</h{level}>\n'
        def block_code(self, code, info=None):
            try: lexer = get_lexer_by_name((info or 'text').split()[0])
            except Exception: lexer = TextLexer()
            return highlight(code, lexer, HtmlFormatter(cssclass='highlight'))
    return mistune.create_markdown(renderer=Renderer(escape=False), plugins=['table', 'strikethrough', 'url'])


class Page:
    def __init__(self, rel:str, nb:dict, md):
        self.rel, self.nb, self.md = rel, nb, md
        self.title, self.description, self.parts = Path(rel).stem, '', []

    def markdown(self, src:str):
        self.parts.append(f'<div class="md">{self.md(_md_source(src))}</div>')

    def code(self, cell:dict):
        from pygments import highlight
        from pygments.lexers import PythonLexer
        from pygments.formatters import HtmlFormatter
        lines, opts = _text(cell['source']).splitlines(), {}
        while lines and _OPT.match(lines[0]):
            k, v = _OPT.match(lines.pop(0)).groups(); opts[k] = v.strip('"\'').lower()
        if opts.get('include') == 'false': return
        src = '\n'.join(lines).strip()
        out = []
        if src and opts.get('echo') != 'false':
            out.append(highlight(src, PythonLexer(), HtmlFormatter(cssclass='highlight source')))
        if opts.get('output') != 'false':
            for o in cell.get('outputs', []): out.append(self.output(o))
        if any(out): self.parts.append('<div class="cell">' + ''.join(out) + '</div>')

    def output(self, o:dict) -> str:
        t = o.get('output_type')
        if t == 'stream':
            cls = 'stderr' if o.get('name') == 'stderr' else 'stdout'
            return f'<pre class="out {cls}">{html.escape(_ANSI.sub("", _text(o.get("text"))))}</pre>'
        if t == 'error':
            return f'<pre class="out error">{html.escape(_ANSI.sub("", chr(10).join(o.get("traceback", []))))}</pre>'
        d = o.get('data', {})
        for mime in ('image/png', 'image/jpeg'):
            if mime in d:
                alt = html.escape(_text(d.get('text/plain', 'figure')))
                return f'<div class="out"><img src="data:{mime};base64,{_text(d[mime]).strip()}" alt="{alt}"></div>'
        if 'image/svg+xml' in d: return f'<div class="out">{_text(d["image/svg+xml"])}</div>'
        if 'text/html' in d: return f'<div class="out html">{_text(d["text/html"])}</div>'
        if 'text/markdown' in d:
            return f'<div class="out md">{self.md(_md_source(_text(d["text/markdown"])))}</div>'
        if 'text/plain' in d: return f'<pre class="out">{html.escape(_text(d["text/plain"]))}</pre>'
        return ''

    def build(self):
        import yaml
        for c in self.nb['cells']:
            src = _text(c.get('source'))
            if c['cell_type'] == 'raw' and src.startswith('---'):
                fm = yaml.safe_load(src.strip().strip('-')) or {}
                self.title, self.description = str(fm.get('title', self.title)), str(fm.get('description', ''))
            elif c['cell_type'] == 'markdown': self.markdown(src)
            elif c['cell_type'] == 'code': self.code(c)
        return self


def _link(url:str, page:str, pages:dict, base:str) -> str:
    "A link inside the site, made relative to `page`; other links unchanged."
    if base and url.startswith(base + '/'): target = url[len(base) + 1:]
    elif re.match(r'^[a-z][a-z0-9+.-]*:|^#|^//', url, re.I): return url
    else: target = os.path.normpath(os.path.join(os.path.dirname(page), url)).replace(os.sep, '/')
    path, _, frag = target.partition('#')
    path = pages.get(path, path)
    if not path: return url
    rel = os.path.relpath(path, os.path.dirname(page) or '.').replace(os.sep, '/')
    return rel + (f'#{frag}' if frag else '')


_CSS = """
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5;color:#212529}
header{background:#2780e3;color:#fff;padding:.6rem 1.2rem;font-size:1.25rem}
header a{color:#fff;text-decoration:none}
.layout{display:flex;align-items:flex-start}
nav.sidebar{flex:0 0 16rem;position:sticky;top:0;max-height:100vh;overflow:auto;padding:1rem;font-size:.92rem;
  border-right:1px solid #dee2e6;box-sizing:border-box}
nav.sidebar .section{font-weight:600;margin:.9rem 0 .3rem;color:#495057}
nav.sidebar ul{list-style:none;margin:0;padding:0}
nav.sidebar li a{display:block;padding:.12rem .4rem;border-radius:.25rem;color:#343a40;text-decoration:none}
nav.sidebar li a.active{background:#e7f1fc;color:#2780e3;font-weight:600}
main{flex:1;min-width:0;max-width:60rem;padding:1rem 2rem 4rem}
main h1{margin-top:.5rem} .description{font-size:1.15rem;color:#6c757d}
img{max-width:100%;height:auto}
pre,.highlight{overflow:auto;font-size:.85rem;background:#f8f9fa;padding:.5rem .75rem;border-radius:.25rem}
.highlight pre{background:none;padding:0;margin:0}
.cell{margin:.8rem 0} pre.out{background:#fff;border-left:3px solid #dee2e6}
pre.stderr{background:#fff8e6} pre.error{background:#fdecea}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} th,td{border:1px solid #dee2e6;padding:.25rem .5rem}
blockquote{color:#6c757d;border-left:3px solid #dee2e6;margin-left:0;padding-left:1rem}
.out.md hr{border:0;border-top:1px solid #dee2e6}
"""


def render_site(pages_nb:dict, groups, out:Path, nbs:Path, cfg):
    from pygments.formatters import HtmlFormatter
    md = _markdown()
    names = {rel: page_name(rel) for rel in pages_nb}
    names.update({rel.replace('.ipynb', '.html'): page_name(rel) for rel in pages_nb})  # links written as .html
    names.update({Path(rel).with_suffix('').as_posix(): page_name(rel) for rel in pages_nb})
    base = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    built = {rel: Page(rel, nb, md).build() for rel, nb in pages_nb.items()}
    site_title = cfg.get('title', cfg.get('lib_name', 'docs'))
    css = _CSS + HtmlFormatter(cssclass='highlight').get_style_defs('.highlight')
    extra_css = nbs/'styles.css'
    (out/'site.css').write_text(css + ('\n' + extra_css.read_text() if extra_css.exists() else ''))
    for rel, page in built.items():
        me = names[rel]
        up = os.path.relpath('.', os.path.dirname(me) or '.').replace(os.sep, '/')
        nav = []
        for title, rels in groups:
            if title: nav.append(f'<div class="section">{html.escape(title)}</div>')
            nav.append('<ul>' + ''.join(
                f'<li><a href="{os.path.relpath(names[r], os.path.dirname(me) or ".")}"'
                f'{" class=active" if r == rel else ""}>{html.escape(built[r].title)}</a></li>' for r in rels if r in built) + '</ul>')
        body = ''.join(page.parts)
        body = _HREF.sub(lambda m: m.group(1) + m.group(2) + html.escape(_link(html.unescape(m.group(3)), me, names, base), quote=True)
                         + m.group(2) if not m.group(3).startswith('data:') else m.group(0), body)
        doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
               f'<meta name="viewport" content="width=device-width, initial-scale=1">'
               f'<title>{html.escape(page.title)} – {html.escape(site_title)}</title>'
               f'<meta name="description" content="{html.escape(page.description)}">'
               f'<link rel="stylesheet" href="{up}/site.css"></head>\n<body>'
               f'<header><a href="{up}/index.html">{html.escape(site_title)}</a></header>\n<div class="layout">'
               f'<nav class="sidebar">{"".join(nav)}</nav>\n<main><h1 id="title">{html.escape(page.title)}</h1>'
               + (f'<p class="description">{md(page.description).strip()[3:-4]}</p>' if page.description else '')
               + f'{body}</main></div></body></html>\n')
        dest = out/me
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(doc, encoding='utf-8')
    for f in nbs.rglob('*'):
        r = f.relative_to(nbs)
        if f.is_file() and f.suffix.lower() in ASSETS and not _skip_dir(r) and r.name != 'styles.css':
            (out/r).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, out/r)


def build(out=None, workers:int=2, strict:bool=False, log=print) -> Path:
    "Build the site into `out` (default: `doc_path` of settings.ini); returns it. The old site is replaced only on success."
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    nbs, out = Path(cfg.nbs_path), Path(out or cfg.doc_path).resolve()
    t0 = time.time()
    groups = site_plan(nbs, log=log)
    rels = [r for _, rs in groups for r in rs]
    if 'index.ipynb' not in rels: raise DocsError(f"{nbs/'index.ipynb'} is missing: it is the home page")
    jobs = [(str(nbs/r), r, strict) for r in rels]
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    from tools.docs import _process as worker  # importable by name in the spawned workers, even when run as a script
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context('spawn')) as ex:
        try: results = list(ex.map(worker, jobs))
        except Exception as e: raise DocsError(f"processing the notebooks failed: {e}") from e
    for _, _, ps, _ in results:
        for p in ps: log(f"warning: {p}")
    mixed = [(rel, n) for rel, _, _, n in results if n]
    if mixed: log(f"note: {sum(n for _, n in mixed)} cells in {len(mixed)} notebooks mix imports with other code; "
                  f"nbdev_docs would run them whole to prepare show_doc, this build runs only their imports")
    tmp = Path(tempfile.mkdtemp(prefix='.docs-', dir=out.parent))
    try:
        render_site({rel: nb for rel, nb, _, _ in results}, groups, tmp, nbs, cfg)
        (tmp/'.nojekyll').touch()
        if out.exists(): shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists(): shutil.rmtree(tmp, ignore_errors=True)
    log(f"{len(rels)} pages in {os.path.relpath(out)}/ ({time.time() - t0:.0f} s); open {os.path.relpath(out)}/index.html")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', help='output folder (default: doc_path in settings.ini, _docs)')
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--strict', action='store_true', help='stop at a cell that fails while preparing show_doc')
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    try: build(a.out, a.workers, a.strict)
    except DocsError as e:
        print(f"error: {e}", file=sys.stderr); return 1
    return 0


if __name__ == '__main__': sys.exit(main())
