"The package's import graph: no circle, and no module importing one from a higher layer (docs: DESIGN.md, 'The way data flows')."
import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1]/'histo_i2i'

# Lowest first; modules on one line are one layer and may import each other (without a circle).
LAYERS = [
    'core',
    'slide',
    'tissue',
    'annotations',
    'synth',
    'tiling',
    'batch',
    'camelyon16',
    'data',
    'layers',
    'checkpoint',
    'similarity features',
    'training',
    'detector',
    'engine',
    'translation',
    'methods',      # the package of methods: histo_i2i/methods/*.py, one module each, none importing another
    'metrics',
    'report',
    'heatmap',
    'reproduce',
    'cli',
]
RANK = {m: i for i, line in enumerate(LAYERS) for m in line.split()}
SKIP = {'__init__', '_modidx'}

def module_name(path:Path) -> str: return '.'.join(path.relative_to(PKG).with_suffix('').parts)

def imported_modules(node, here:str) -> list[str]:
    "The package modules an `import`/`from` statement names (relative imports resolved from `here`)."
    if isinstance(node, ast.Import):
        return [a.name.split('.', 1)[1] for a in node.names if a.name.startswith('histo_i2i.')]
    if node.level: base = '.'.join(['histo_i2i'] + here.split('.')[:-node.level]) + ('.' + node.module if node.module else '')
    else: base = node.module or ''
    if base == 'histo_i2i': return [a.name for a in node.names]
    return [base.split('.', 1)[1]] if base.startswith('histo_i2i.') else []

def optional(lines:list[str], node) -> bool:
    "A function-level import marked optional in a comment on its line."
    return 'optional' in lines[node.lineno - 1].split('#', 1)[-1] if '#' in lines[node.lineno - 1] else False

def import_graph() -> dict[str, dict[str, list[str]]]:
    "module → {imported module: ['top' | 'function', ...]} over the package's modules."
    graph = {}
    for path in sorted(PKG.rglob('*.py')):
        name = module_name(path)
        if name in SKIP: continue
        src = path.read_text(); lines = src.splitlines()
        edges = graph.setdefault(name, {})
        for node in ast.walk(ast.parse(src)):
            if not isinstance(node, (ast.Import, ast.ImportFrom)): continue
            top = node.col_offset == 0
            if not top and optional(lines, node): continue
            for m in imported_modules(node, name):
                if m != name: edges.setdefault(m, []).append('top' if top else 'function')
    return graph

def cycles(graph) -> list[list[str]]:
    "Every circle found by a depth-first search (each reported once, from where it was found)."
    found, state = [], {}
    def visit(m, stack):
        state[m] = 'open'; stack.append(m)
        for n in graph.get(m, {}):
            if state.get(n) == 'open': found.append(stack[stack.index(n):] + [n])
            elif n not in state: visit(n, stack)
        stack.pop(); state[m] = 'done'
    for m in graph:
        if m not in state: visit(m, [])
    return found

def test_graph_sees_imports():
    g = import_graph()
    assert 'core' in g['tiling'] and 'detector' in g['engine']      # the test can see the edges it checks
    assert set(g) <= set(RANK) | {m for m in g if m.startswith('methods.')}, f"modules without a layer: {sorted(set(g) - set(RANK))}"

def test_cycles_found():
    assert cycles({'a': {'b': []}, 'b': {'c': []}, 'c': {'a': []}}) == [['a', 'b', 'c', 'a']]
    assert cycles({'a': {'b': []}, 'b': {}}) == []

def rank(m:str) -> int: return RANK['methods'] if m.startswith('methods.') else RANK[m]

def test_methods_import_no_method():
    "A method module imports no other method (each method is one module)."
    bad = [f"{m} → {n}" for m, edges in import_graph().items() for n in edges if m.startswith('methods.') and n.startswith('methods')]
    assert bad == [], '\n'.join(bad)

def test_no_circle():
    assert cycles(import_graph()) == []

def test_layers_point_down():
    up = [f"{m} → {n} ({', '.join(sorted(set(how)))})" for m, edges in import_graph().items() for n, how in edges.items() if rank(n) > rank(m)]
    assert up == [], "imports from a lower layer to a higher one:\n" + '\n'.join(up)

def test_no_private_imports():
    "No module imports another module's private names."
    bad = []
    for path in sorted(PKG.rglob('*.py')):
        name = module_name(path)
        if name in SKIP: continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and imported_modules(node, name) and not (node.level == 1 and not node.module):
                bad += [f"{name} imports {a.name} from {node.module}" for a in node.names if a.name.startswith('_') and imported_modules(node, name)[0] != name]
    assert bad == [], '\n'.join(bad)

def test_imports_at_the_top():
    "A module imports the package's modules at the top; a function-level import says in a comment why it is optional."
    late = [f"{m} → {n}" for m, edges in import_graph().items() for n, how in edges.items() if 'function' in how]
    assert late == [], "function-level imports not marked optional:\n" + '\n'.join(late)

def fresh_python(code:str) -> str:
    "What `code` prints in a new interpreter (so that nothing imported here counts)."
    import subprocess, sys
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=PKG.parent, check=True).stdout.strip()

def test_registry_is_lazy():
    "Importing the detector interface loads no method; the first lookup in `METHODS` finds every module of the methods package."
    out = fresh_python("import sys, pkgutil, histo_i2i.detector as d, histo_i2i.methods as p; "
                       "before = sorted(m for m in sys.modules if m.startswith('histo_i2i.methods.')); names = list(d.METHODS); "
                       "print(before, sorted({d.METHODS[n].__module__ for n in names}) == sorted(f'histo_i2i.methods.{m.name}' for m in pkgutil.iter_modules(p.__path__)))")
    assert out == '[] True', out

def test_networks_need_no_trainer():
    "Network modules and training settings load without the engine or fastai."
    out = fresh_python("import sys, histo_i2i.translation, histo_i2i.training; "
                       "print(sorted(m for m in ('fastai', 'histo_i2i.engine') if m in sys.modules))")
    assert out == '[]', out

def test_engine_reads_in_pieces():
    "No function or class of the training engine is longer than 80 lines (docs: nbs/10a_engine.ipynb, 'The training loop')."
    tree = ast.parse((PKG/'engine.py').read_text())
    long = {n.name: n.end_lineno - n.lineno + 1 for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.end_lineno - n.lineno + 1 > 80}
    assert not long, f"too long to read at once (lines): {long}"
