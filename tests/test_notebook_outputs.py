"""Stored outputs of the narrative notebooks (`make notebooks`): every paper notebook opens with its figures, its outputs
are clean and recorded as coming from one profile, and the Table 1 stored in `04_evaluation` is the one that
`make reproduce` writes (runs/<profile>/table.csv) for the same profile and parameters."""
import json, math, os, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAPER = sorted((ROOT/'nbs'/'paper').glob('*.ipynb'))
NOT_YET = ("no notebook in nbs/paper/ holds any output yet: `make notebooks` stores them; from then on this check "
           "applies to every paper notebook")


def _load(p): return json.loads(Path(p).read_text(encoding='utf-8'))
def _text(v): return ''.join(v) if isinstance(v, list) else (v or '')
def _outputs(nb): return [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]
def _stored(nb): return nb.get('metadata', {}).get('histo_i2i', {}).get('stored_outputs')


NBS = {p.stem: _load(p) for p in PAPER}
EXECUTED = [name for name, nb in NBS.items() if _outputs(nb)]
needs_outputs = pytest.mark.skipif(not EXECUTED, reason=NOT_YET)


def test_paper_notebooks_found():
    assert len(PAPER) >= 5, f"expected the five narrative notebooks in nbs/paper/, found {[p.name for p in PAPER]}"


@needs_outputs
def test_every_paper_notebook_holds_its_figures():
    no_fig = [n for n, nb in NBS.items() if not any('image/png' in o.get('data', {}) for o in _outputs(nb))]
    assert not no_fig, f"paper notebooks without a stored figure: {no_fig}; run `make notebooks`"


@needs_outputs
def test_outputs_are_clean_and_from_one_run():
    errors = [n for n, nb in NBS.items() if any(o.get('output_type') == 'error' for o in _outputs(nb))]
    assert not errors, f"paper notebooks that store an error: {errors}"
    counted = [n for n, nb in NBS.items() for c in nb['cells'] if c.get('execution_count') is not None]
    assert not counted, f"execution counts left in {sorted(set(counted))}: nbdev_clean removes them"
    runs = {n: _stored(nb) and _stored(nb).get('profile') for n, nb in NBS.items()
            if not nb.get('metadata', {}).get('histo_i2i', {}).get('results_only')}   # 08_real_tissue reads bench/results, not a run
    assert len(set(runs.values())) == 1 and None not in runs.values(), \
        f"the paper notebooks' outputs come from different runs or were not stored by `make notebooks`: {runs}"
    local = [n for n, nb in NBS.items() if str(ROOT) in json.dumps(_outputs(nb))]
    assert not local, f"outputs of {local} name this checkout's absolute path"


def _markdown_table(nb) -> list[dict]:
    "Rows of the first markdown table with an AUC column among the notebook's outputs."
    for o in _outputs(nb):
        md = _text(o.get('data', {}).get('text/markdown'))
        lines = [l.strip() for l in md.splitlines() if l.strip().startswith('|')]
        if len(lines) < 3 or 'AUC' not in lines[0]: continue
        cells = lambda l: [c.strip() for c in l.strip('|').split('|')]
        head = cells(lines[0])
        return [dict(zip(head, cells(l))) for l in lines[2:]]
    return []


def _first_number(s:str) -> float:
    m = re.match(r'\s*(-?\d+(?:\.\d+)?)', s)
    return float(m.group(1)) if m else math.nan


@needs_outputs
def test_table1_matches_make_reproduce():
    import pandas as pd
    nb = NBS.get('04_evaluation')
    assert nb is not None, "nbs/paper/04_evaluation.ipynb is missing"
    stored = _stored(nb)
    assert stored, "04_evaluation holds outputs that `make notebooks` did not store (no histo_i2i.stored_outputs metadata)"
    run = ROOT/(stored['parameters'].get('out_dir') or f"runs/{stored['profile']}")
    csv = run/'table.csv'
    if not csv.exists():
        pytest.skip(f"{csv.relative_to(ROOT)} is absent: `make reproduce PROFILE={stored['profile']}` writes it")
    pf = run/'04_evaluation.inputs.json'   # core.record_inputs beside the executed notebook
    if pf.exists():
        used = json.loads(pf.read_text().replace(str(ROOT) + os.sep, ''))  # stored parameters name paths relatively
        if used != stored['parameters']:
            pytest.skip(f"{run.relative_to(ROOT)} was made with other parameters ({used}) than the stored notebook "
                        f"({stored['parameters']}): nothing to compare")
    rows = _markdown_table(nb)
    assert rows, "04_evaluation stores no Table 1 (a markdown table with an AUC column)"
    table = pd.read_csv(csv)
    label_col = next(iter(rows[0]))
    shown = {r[label_col]: r for r in rows}
    assert sorted(shown) == sorted(table['label']), \
        f"Table 1 rows differ: notebook {sorted(shown)}, {csv.relative_to(ROOT)} {sorted(table['label'])}"
    diffs = []
    for _, r in table.iterrows():
        for metric in ('AUC', 'AP', 'F1', 'CA'):
            nb_v, csv_v = _first_number(shown[r['label']].get(metric, '')), round(float(r[metric.lower()]), 3)
            if not (nb_v == csv_v or (math.isnan(nb_v) and math.isnan(csv_v))):
                diffs.append(f"{r['label']} {metric}: notebook {nb_v}, table.csv {csv_v}")
    assert not diffs, ("the Table 1 stored in 04_evaluation is not the one make reproduce wrote; run `make notebooks`:\n"
                       + '\n'.join(diffs))
