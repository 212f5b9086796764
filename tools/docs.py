"""Build the documentation site from the notebooks into `_docs/`, offline.

    python tools/docs.py [--out _docs] [--workers 2]      # the site, rendered by nbconvert
    python tools/docs.py --proc-only [--proc _proc]        # only the processed notebooks, for `quarto render`

Two maintained tools do the work. nbdev's public processors (`nbdev.processors.FilterDefaults`, what `nbdev_docs` and
`nbdev_proc_nbs` run) turn each notebook into its documentation form: front matter from the title cell, a `show_doc`
table after every exported function, exported and hidden cells removed, names in backticks linked to their pages.
nbconvert's HTML exporter (`tools/site/`: its JupyterLab template plus a sidebar from `nbs/sidebar.yml`) then writes
each page with its stored outputs: figures are embedded PNGs, `show_doc` output is rendered Markdown.

One processor differs from nbdev's: nbdev runs every cell that contains an import, whole, to prepare `show_doc`, and
stops at the first one that needs earlier test cells (nbdev's FAQ asks for imports in cells of their own). Here such
cells run only their import statements. Pages are named as nbdev and Quarto name them (`output-file` of the front
matter: `00_core.ipynb` -> `core.html`). What no library does, this file does: links to notebooks and to the site's
address become relative links (the site works from the file system), links to other repository files point at the
repository, and Quarto-only Markdown (`{target=...}` after links, `:::` fences) is dropped.
"""
from __future__ import annotations
import argparse, ast, os, re, shutil, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent   # tools/site/ is an nbconvert template


class DocsError(Exception): pass


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


# ---------------------------------------------------------------- nbdev's processors
def code_for_docs(cell) -> str|None:
    "What of `cell` runs to prepare `show_doc`: all of an exported or `show_doc` cell, only the imports of another cell."
    if cell.cell_type != 'code' or cell.directives_.get('eval:', [''])[0].lower() == 'false': return None
    trees = cell.parsed_()
    if not trees or 'nbdev_export' + '()' in cell.source: return None
    shows = any(isinstance(t, ast.Expr) and isinstance(t.value, ast.Call) and getattr(t.value.func, 'id', '') == 'show_doc'
                for t in trees)
    if shows or cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'}: return cell.source
    imports = [ast.unparse(t) for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))]
    return '\n'.join(imports) or None


def _processors():
    from nbdev.processors import FilterDefaults, exec_show_docs

    class exec_docs_and_imports(exec_show_docs):
        "nbdev's `exec_show_docs`, running `code_for_docs` of each cell."
        def __call__(self, cell):
            if not getattr(self.nb, 'has_docs_', None) or not hasattr(self, 'k'): return
            if str(getattr(self.nb, 'frontmatter_', {}).get('skip_showdoc', '')).lower() in ('true', '1', 'yes'): return
            code = code_for_docs(cell)
            if code is None: return
            if code == cell.source: self.k.cell(cell)
            else: self.k.run_cell(code)
            if self.k.exc:
                first = (code.strip().splitlines() or [''])[0][:70]
                raise DocsError(f"cell {cell.idx_} ({first}) failed while preparing show_doc: "
                                f"{type(self.k.exc).__name__}: {self.k.exc}")

    class DocsProcessors(FilterDefaults):
        def base_procs(self): return [exec_docs_and_imports if p is exec_show_docs else p for p in super().base_procs()]
    return DocsProcessors()


def process_notebook(src:str, dest:str) -> str:
    "Write `src` as nbdev's documentation processors leave it to `dest`; returns `src`."
    from execnb.nbio import read_nb, write_nb
    os.environ['IN_TEST'] = '1'
    os.chdir(Path(src).parent)
    nb = read_nb(src)
    try: _processors()(nb)
    except Exception as e: raise DocsError(f"{os.path.relpath(src, ROOT)}: {e}") from None
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dest)
    return src


def process(nbs:Path, rels:list[str], proc:Path, workers:int=2) -> Path:
    "Every notebook of `rels` processed into `proc`, beside a copy of the other files of `nbs` (images, Quarto settings)."
    if proc.exists(): shutil.rmtree(proc)
    for f in nbs.rglob('*'):
        r = f.relative_to(nbs)
        if f.is_file() and f.suffix != '.ipynb' and not _skip_dir(r) and not r.name.startswith('.'):
            (proc/r).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, proc/r)
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    from tools.docs import process_notebook as worker   # importable by name in spawned workers, also when run as a script
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context('spawn')) as ex:
        futures = [ex.submit(worker, str(nbs/r), str(proc/r)) for r in rels]
        try:
            for f in futures: f.result()
        except DocsError: raise
        except Exception as e: raise DocsError(f"processing the notebooks failed: {e}") from e
    return proc


# ---------------------------------------------------------------- links and Quarto-only Markdown
_QUARTO_ATTRS = re.compile(r'(\]\([^)]*\))\{[^}]*\}')
_QUARTO_FENCE = re.compile(r'^:::.*\n?', re.M)
_MD_LINK = re.compile(r'(\]\()([^)\s]+)')
_HTML_LINK = re.compile(r'''(\b(?:href|src)=)(["'])(.*?)\2''')


def site_link(url:str, nb:str, pages:dict, base:str, repo:str) -> str:
    """`url`, written in notebook `nb`, as a link of the built site: relative for the site's own address and notebooks
    (`pages`: notebook -> page), the repository's address for repository files outside `nbs/`, else unchanged."""
    if base and url.startswith(base + '/'): target = url[len(base) + 1:]
    elif re.match(r'^[a-z][a-z0-9+.-]*:|^#|^//', url, re.I): return url
    else:
        path, _, frag = url.partition('#')
        full = os.path.normpath(os.path.join(os.path.dirname(nb), path)).replace(os.sep, '/')
        if full.startswith('../'):
            return f"{repo}/{full[3:]}" + (f'#{frag}' if frag else '') if repo and full.count('../') == 1 else url
        target = pages.get(full, full) + (f'#{frag}' if frag else '')
    path, _, frag = target.partition('#')
    if not path: return url
    rel = os.path.relpath(path, os.path.dirname(pages[nb]) or '.').replace(os.sep, '/')
    return rel + (f'#{frag}' if frag else '')


def site_markdown(md:str, link) -> str:
    "Markdown with Quarto-only syntax dropped and every link passed through `link`."
    md = _QUARTO_FENCE.sub('', _QUARTO_ATTRS.sub(r'\1', md))
    md = _MD_LINK.sub(lambda m: m[1] + link(m[2]), md)
    return _HTML_LINK.sub(lambda m: m[1] + m[2] + (m[3] if m[3].startswith('data:') else link(m[3])) + m[2], md)


# ---------------------------------------------------------------- rendering with nbconvert
def front_matter(nb) -> dict:
    "The YAML front matter nbdev's processors put in the first raw cell (title, description, output-file)."
    import yaml
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.lstrip().startswith('---'):
            return yaml.safe_load(c.source.strip().strip('-')) or {}
    return {}


_OPT = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')


def for_nbconvert(nb, link):
    "The processed notebook as nbconvert shows it: Quarto cell options as nbconvert's tags, front matter out, links fixed."
    cells = []
    for c in nb.cells:
        if c.cell_type == 'raw': continue
        if c.cell_type == 'markdown': c.source = site_markdown(c.source, link)
        if c.cell_type == 'code':
            lines, tags = c.source.splitlines(), set(c.metadata.get('tags', []))
            while lines and _OPT.match(lines[0]):
                k, v = _OPT.match(lines.pop(0)).groups()
                v = v.strip('"\'').lower()
                if (k, v) == ('include', 'false'): tags.add('remove_cell')
                if (k, v) == ('echo', 'false'): tags.add('remove_input')
                if (k, v) == ('output', 'false'): tags.add('remove_output')
            c.source = '\n'.join(lines).strip()
            if not c.source: tags.add('remove_input')
            for o in c.get('outputs', []):
                if 'text/markdown' in o.get('data', {}): o['data']['text/markdown'] = site_markdown(o['data']['text/markdown'], link)
            if not c.get('outputs') and 'remove_input' in tags: continue
            c.metadata['tags'] = sorted(tags)
        cells.append(c)
    nb.cells = cells
    return nb


def exporter():
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    ex = HTMLExporter(template_name='site', extra_template_basedirs=[str(TEMPLATES)], exclude_input_prompt=True,
                      exclude_output_prompt=True)
    ex.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={'remove_cell'}, remove_input_tags={'remove_input'},
                                                   remove_all_outputs_tags={'remove_output'}), enabled=True)
    return ex


def render(proc:Path, groups, out:Path, cfg):
    "Each processed notebook of `groups` as an HTML page of `out`, the other files of `proc` (images) copied beside."
    import nbformat
    rels = [r for _, rs in groups for r in rs]
    nbs = {r: nbformat.read(proc/r, as_version=4) for r in rels}
    meta = {r: front_matter(nb) for r, nb in nbs.items()}
    pages = {r: (Path(r).parent/meta[r].get('output-file', Path(r).with_suffix('.html').name)).as_posix() for r in rels}
    pages.update({r[:-len('.ipynb')] + '.html': p for r, p in list(pages.items())})   # links written as .html
    base = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    repo = f"{cfg.get('git_url', '').rstrip('/')}/blob/{cfg.get('branch', 'main')}" if cfg.get('git_url') else ''
    ex, name = exporter(), cfg.get('title', cfg.get('lib_name', 'docs'))
    for f in proc.rglob('*'):
        if f.is_file() and f.suffix not in ('.ipynb', '.yml', '.css'):
            (out/f.relative_to(proc)).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, out/f.relative_to(proc))
    shutil.copy2(TEMPLATES/'site'/'site.css', out/'site.css')
    for rel, nb in nbs.items():
        me = pages[rel]
        here = lambda p: os.path.relpath(p, os.path.dirname(me) or '.').replace(os.sep, '/')
        nav = [(t, [(meta[r].get('title', Path(r).stem), here(pages[r]), r == rel) for r in rs]) for t, rs in groups]
        site = dict(name=name, title=meta[rel].get('title', Path(rel).stem), description=meta[rel].get('description', ''),
                    root='' if here('.') == '.' else here('.') + '/', nav=nav)
        link = lambda u, rel=rel: site_link(u, rel, pages, base, repo)
        body, _ = ex.from_notebook_node(for_nbconvert(nb, link), resources=dict(site=site, metadata=dict(name=site['title'], path=str(proc/Path(rel).parent))))
        (out/me).parent.mkdir(parents=True, exist_ok=True)
        (out/me).write_text(body, encoding='utf-8')


def build(out=None, workers:int=2, proc=None, log=print) -> Path:
    "Build the site into `out` (default: `doc_path` of settings.ini); returns it. The old site is replaced only on success."
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    nbs, out = Path(cfg.nbs_path), Path(out or cfg.doc_path).resolve()
    t0 = time.time()
    groups = site_plan(nbs, log=log)
    rels = [r for _, rs in groups for r in rs]
    if 'index.ipynb' not in rels: raise DocsError(f"{nbs/'index.ipynb'} is missing: it is the home page")
    tmp = Path(tempfile.mkdtemp(prefix='.docs-', dir=out.parent))
    try:
        processed = process(nbs, rels, Path(proc) if proc else tmp/'_proc', workers)
        site = tmp/'site'; site.mkdir()
        render(processed, groups, site, cfg)
        (site/'.nojekyll').touch()
        if out.exists(): shutil.rmtree(out)
        site.rename(out)
    finally: shutil.rmtree(tmp, ignore_errors=True)
    log(f"{len(rels)} pages in {os.path.relpath(out)}/ ({time.time() - t0:.0f} s); open {os.path.relpath(out)}/index.html")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', help='output folder (default: doc_path in settings.ini, _docs)')
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--proc-only', action='store_true', help='only process the notebooks (into --proc) for `quarto render`')
    ap.add_argument('--proc', default='_proc', help='folder of the processed notebooks with --proc-only (default _proc)')
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    try:
        if a.proc_only:
            from nbdev.config import get_config
            nbs = Path(get_config(path=ROOT).nbs_path)
            print(f"processed notebooks in {process(nbs, [r for _, rs in site_plan(nbs) for r in rs], Path(a.proc).resolve(), a.workers)}")
        else: build(a.out, a.workers)
    except DocsError as e:
        print(f"error: {e}", file=sys.stderr); return 1
    return 0


if __name__ == '__main__': sys.exit(main())
