"""Store outputs in the repository's notebooks, executed with the current code.

    python tools/notebooks.py paper [--profile demo] [--set KEY=VALUE ...] [--out DIR] [--dest DIR] [--steps STEP ...]
    python tools/notebooks.py library nbs/00_core.ipynb [nbs/17_metrics.ipynb ...]

`paper` runs the narrative notebooks `nbs/paper/*.ipynb` on a reproduction profile (the same papermill run as
`histo-i2i reproduce`, into `runs/<profile>/`), then writes the executed notebooks back over `nbs/paper/`: the
`parameters` cell keeps its defaults (so `nbdev_test` still runs the notebooks small), papermill's injected-parameters
cell is dropped, and a note after the `parameters` cell plus the notebook metadata `histo_i2i.stored_outputs` record the
profile and parameters the outputs come from. `--steps` runs and stores only the named notebooks; optional steps such as
`07_contamination`, which `make reproduce` leaves out, are stored this way (`--steps 07_contamination`).

`library` executes library notebooks in place the way `nbdev_test` does (same kernel, `IN_TEST=1`, cells marked
`#| eval: false` or with a flag from `tst_flags` are skipped) and keeps their outputs.

Both finish with nbdev's own cleaning (`nbdev_clean` settings in settings.ini): outputs stay, execution counts and
volatile metadata go.
"""
from __future__ import annotations
import argparse, copy, json, os, re, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTE_TAG = 'stored-outputs'
META_KEY = 'histo_i2i'


class NotebookError(Exception): pass


def read_json(path) -> dict:
    try: return json.loads(Path(path).read_text(encoding='utf-8'))
    except Exception as e: raise NotebookError(f"{path}: not a readable notebook ({e})") from e


MAX_FIGURE_PX = 1000   # stored figures wider than this are scaled down (and kept as 256-colour PNGs when that is smaller)


def shrink_image(png_b64:str, max_px:int=MAX_FIGURE_PX) -> str:
    "A stored PNG (base64) no wider than `max_px`, palette-coded when that is smaller: figures read the same, notebooks stay small."
    import base64, io
    from PIL import Image
    raw = base64.b64decode(png_b64)
    im = Image.open(io.BytesIO(raw))
    if im.width > max_px: im = im.convert('RGBA').resize((max_px, round(im.height * max_px / im.width)), Image.LANCZOS)
    buf = io.BytesIO(); im.convert('RGB').quantize(256).save(buf, format='PNG', optimize=True)
    return base64.b64encode(buf.getvalue()).decode() if buf.tell() < len(raw) else png_b64


def _shrink_outputs(nb:dict):
    for c in nb['cells']:
        for o in c.get('outputs', []):
            data = o.get('data', {})
            if 'image/png' in data:
                v = data['image/png']
                data['image/png'] = shrink_image(''.join(v) if isinstance(v, list) else v)


def write_clean(nb:dict, path):
    "Clean `nb` with the settings.ini rules of `nbdev_clean` (outputs kept, figures shrunk, this checkout's paths made relative) and write it to `path`."
    from nbdev.config import get_config
    from nbdev.clean import clean_nb
    from execnb.nbio import dict2nb, write_nb
    cfg = get_config(path=ROOT)
    if str(cfg.get('clear_all', 'False')).lower() in ('true', '1', 'yes'):
        raise NotebookError("settings.ini has clear_all = True: nbdev_clean would delete the outputs this stores")
    nb['metadata'].pop('widgets', None)  # widget state is volatile; nbdev keeps it by default
    _shrink_outputs(nb)
    for c in nb['cells']:
        if c['cell_type'] == 'code': c['outputs'] = _relative(c.get('outputs', []), [(str(ROOT) + os.sep, ''), (_SITE_PACKAGES, 'site-packages/')])
    clean_nb(nb, False, cfg.get('allowed_metadata_keys', '').split(), cfg.get('allowed_cell_metadata_keys', '').split(),
             str(cfg.get('clean_ids', 'True')).lower() in ('true', '1', 'yes'))
    write_nb(dict2nb(nb), path)


def _src(cell) -> str: return cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])
def _tags(cell) -> list: return cell.get('metadata', {}).get('tags', [])


def _code_sources(nb:dict) -> list[str]:
    return [_src(c) for c in nb['cells'] if c['cell_type'] == 'code' and 'injected-parameters' not in _tags(c)]


def _relative(value, replacements):
    "Replace absolute run paths in strings (recursively) by paths relative to the repository."
    if isinstance(value, str):
        for a, b in replacements: value = a.sub(b, value) if isinstance(a, re.Pattern) else value.replace(a, b)
        return value
    if isinstance(value, list): return [_relative(v, replacements) for v in value]
    if isinstance(value, dict): return {k: _relative(v, replacements) for k, v in value.items()}
    return value


_SITE_PACKAGES = re.compile(r"""/[^\s'"]*/site-packages/""")


def _noise(output) -> bool:
    "Leftovers of fastprogress bars: its <style> block and emptied bars."
    html = output.get('data', {}).get('text/html')
    if output.get('output_type') != 'display_data' or html is None: return False
    html = ''.join(html).strip()
    return not html or (html.startswith('<style>') and html.endswith('</style>') and 'progress' in html)


def _note_cell(profile:str, params:dict) -> dict:
    shown = ', '.join(f'`{k}={v!r}`' for k, v in params.items())
    text = (f"*The outputs stored in this notebook come from `make notebooks`: profile `{profile}`, with {shown}. "
            f"Run as it is, the notebook uses the defaults of the `parameters` cell above instead.*")
    return dict(cell_type='markdown', id='0utputs0', metadata=dict(tags=[NOTE_TAG]), source=[text])


def store_paper_notebook(executed, dest, profile:str, params:dict, out_dir):
    "Write the papermill-executed notebook `executed` over `dest` (see the module docstring)."
    nb, src = read_json(executed), read_json(dest)
    if _code_sources(nb) != _code_sources(src):
        raise NotebookError(f"{dest} changed while it ran (its code cells differ from {executed}); run `make notebooks` again")
    reps = [(str(Path(out_dir).resolve()), os.path.relpath(Path(out_dir).resolve(), ROOT)), (str(ROOT) + os.sep, '')]
    cells = [c for c in nb['cells'] if not ({'injected-parameters', NOTE_TAG} & set(_tags(c)))]
    for c in cells:
        if c['cell_type'] == 'code': c['outputs'] = _relative([o for o in c.get('outputs', []) if not _noise(o)], reps)
    params = _relative({k: v for k, v in params.items()}, reps)
    at = next((i for i, c in enumerate(cells) if 'parameters' in _tags(c)), None)
    if at is None: raise NotebookError(f"{dest} has no cell tagged `parameters`")
    cells.insert(at + 1, _note_cell(profile, params))
    nb['cells'] = cells
    nb['metadata'] = {**src.get('metadata', {}), META_KEY: dict(stored_outputs=dict(profile=profile, parameters=params))}
    write_clean(nb, dest)


def run_paper(profile='demo', overrides=(), out_dir=None, dest=None, redo=True, steps=None, log=print):
    "Execute the narrative notebooks on `profile` and store their outputs in `dest` (default: nbs/paper)."
    from histo_i2i.reproduce import reproduce, paper_dir
    dest = Path(dest or paper_dir())
    out_dir = Path(out_dir or ROOT/'runs'/Path(profile).stem).resolve()
    report = reproduce(profile, overrides=list(overrides), out_dir=out_dir, redo=redo, steps=steps, notebooks_dir=dest, log=log)
    bad = report[report.status != 'done'] if redo else report[~report.status.isin(['done', 'skipped'])]
    if len(bad):
        raise NotebookError("these notebooks did not run, so nothing was stored:\n" + bad.to_string(index=False))
    for step in report.attrs['plan']:   # the steps as reproduce planned and ran them
        store_paper_notebook(step['executed'], step['notebook'], Path(profile).stem, dict(step['parameters']), out_dir)
        log(f"stored outputs: {os.path.relpath(step['notebook'], ROOT)}")
    return report


def _skip(cell, flags) -> bool:
    "nbdev_test's rule: skip non-code cells, `#| eval: false` cells and cells carrying a test flag not asked for."
    from nbdev.process import extract_directives
    if cell['cell_type'] != 'code': return True
    if 'nbdev_export' + '(' in _src(cell): return True
    d = extract_directives(copy.deepcopy(cell), remove=False)
    if d.get('eval:', [''])[0].lower() == 'false': return True
    return bool(set(flags) & set(d))


def run_library(paths, log=print):
    "Execute library notebooks in place as `nbdev_test` does, keeping their outputs."
    from nbdev.config import get_config
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    flags = get_config(path=ROOT).get('tst_flags', '').split()
    for p in map(Path, paths):
        if p.resolve().is_relative_to((ROOT/'nbs'/'paper').resolve()):
            raise NotebookError(f"{p} is a narrative notebook: use `tools/notebooks.py paper`, which runs it on a profile")
        t0 = time.time()
        nb = read_nb(p)
        for c in nb.cells: c.outputs = [] if c.cell_type == 'code' else c.get('outputs')
        os.environ['IN_TEST'] = '1'
        k = CaptureShell(p)
        cwd = os.getcwd(); os.chdir(p.parent)
        try: k.run_all(nb, exc_stop=True, preproc=lambda c: _skip(c, flags))
        except Exception: raise NotebookError(f"{p} failed, nothing written:\n{k.prettytb(fname=p)}") from None
        finally: os.chdir(cwd); os.environ.pop('IN_TEST', None)
        nb = json.loads(json.dumps(nb))
        for c in nb['cells']:
            if c['cell_type'] != 'code': c.pop('outputs', None); c.pop('execution_count', None)
        write_clean(nb, p)
        log(f"stored outputs: {p} ({time.time() - t0:.0f} s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='what', required=True)
    pp = sub.add_parser('paper', help='run nbs/paper/*.ipynb on a profile and store the outputs')
    pp.add_argument('--profile', default='demo')
    pp.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE')
    pp.add_argument('--out', help='run folder (default runs/<profile>)')
    pp.add_argument('--dest', help='folder of the notebooks to run and overwrite (default nbs/paper)')
    pp.add_argument('--reuse', action='store_true', help='keep steps that `make reproduce` finished with the same parameters')
    pp.add_argument('--steps', nargs='+', default=None, help="only these notebooks (default: the profile's steps), e.g. 07_contamination")
    lp = sub.add_parser('library', help='execute library notebooks in place')
    lp.add_argument('notebooks', nargs='+')
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    try:
        if a.what == 'paper': run_paper(a.profile, a.overrides, a.out, a.dest, redo=not a.reuse, steps=a.steps)
        else: run_library(a.notebooks)
    except NotebookError as e:
        print(f"error: {e}", file=sys.stderr); return 1
    return 0


if __name__ == '__main__': sys.exit(main())
