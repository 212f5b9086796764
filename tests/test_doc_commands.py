"""Commands in the documentation are tested: every `histo-i2i ...` and `make ...` line of README.md, data/README.md,
bench/README.md and the notebooks' markdown parses with the command line's own parser (same subcommands and flags),
names a profile that exists and only `--set` keys the profile's notebooks take, with the settings a profile requires;
`make` lines name Makefile targets. The README's command-line quickstart runs, on tiny synthetic data."""
import json, os, re, shlex, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOCS = [ROOT/'README.md', ROOT/'data'/'README.md', ROOT/'bench'/'README.md']
COMMAND = re.compile(r'^(?:.*--no-python\s+)?((?:histo-i2i|make)\s.*)$')


def _markdown(path:Path) -> str:
    if path.suffix != '.ipynb': return path.read_text(encoding='utf-8')
    nb = json.loads(path.read_text(encoding='utf-8'))
    return '\n\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')


def doc_commands(text:str) -> list[str]:
    "`histo-i2i`/`make` commands of a markdown text: lines of code blocks (continuations joined, comments dropped) and inline code."
    out, fenced = [], re.findall(r'```[a-z]*\n(.*?)```', text, re.S)
    for block in fenced:
        for line in block.replace('\\\n', ' ').splitlines():
            line = re.sub(r'\s+#.*$', '', line).strip()
            m = COMMAND.match(line)
            if m: out.append(m[1])
    rest = re.sub(r'```.*?```', '', text, flags=re.S)
    out += ['INLINE ' + m.strip() for m in re.findall(r'`((?:histo-i2i|make) [^`]+)`', rest)]
    return out


def _options(sub:str) -> set|None:
    "The option strings of a histo-i2i subcommand, or None when there is no such subcommand."
    import argparse
    from histo_i2i.cli import build_parser
    act = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    p = act.choices.get(sub)
    return None if p is None else {o for a in p._actions for o in a.option_strings}


def _sources():
    nbs = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_'))
    return [(p, c) for p in DOCS + nbs for c in doc_commands(_markdown(p))]


def _make_targets() -> set:
    return set(re.findall(r'(?m)^([a-zA-Z][\w-]*):', (ROOT/'Makefile').read_text()))


def check_command(cmd:str, tmp:Path) -> str|None:
    "What is wrong with a documented command, or None."
    inline = cmd.startswith('INLINE ')
    argv = shlex.split(cmd[7:] if inline else cmd)
    if inline and argv[0] == 'histo-i2i':      # a mention in the text (`histo-i2i train --minutes 30`): subcommand and flags
        if len(argv) < 2 or argv[1].isupper(): return None          # a placeholder: `histo-i2i CMD: error: ...`
        opts = _options(argv[1])
        if opts is None: return f"histo-i2i has no subcommand {argv[1]!r}"
        unknown = [a.split('=')[0] for a in argv[2:] if a.startswith('-') and a.split('=')[0] not in opts]
        if unknown: return f"histo-i2i {argv[1]} has no option {unknown}"
        if argv[1] != 'reproduce': return None
        return check_command(' '.join(map(shlex.quote, argv)), tmp) if '--profile' in argv else None
    if argv[0] == 'make':
        from histo_i2i.reproduce import load_profile
        for a in argv[1:]:
            if '=' in a:
                k, v = a.split('=', 1)
                if k == 'PROFILE':
                    try: load_profile(v)
                    except Exception as e: return f"PROFILE={v}: {e}"
            elif a not in _make_targets(): return f"the Makefile has no target {a!r}"
        return None
    from histo_i2i.cli import build_parser
    try: args = build_parser().parse_args(argv[1:])
    except SystemExit: return "the histo-i2i parser refuses it"
    if argv[1] != 'reproduce': return None
    from histo_i2i.reproduce import load_profile, parse_overrides, plan_steps
    try:
        prof = load_profile(args.profile)
        ov = parse_overrides(args.overrides) if hasattr(args, 'overrides') else {}
        plan_steps(prof, {k: v for k, v in ov.items() if not k.startswith('prepare.')}, tmp, getattr(args, 'steps', None))
    except Exception as e: return str(e)
    needed = [k for k, v in prof['parameters'].items() if v == '' and k not in ov]
    if needed: return f"profile {args.profile!r} needs {', '.join(f'--set {k}=...' for k in needed)}"
    return None


def test_finds_commands():
    found = _sources()
    assert len(found) >= 20 and any(c.startswith('make reproduce') for _, c in found), found


def test_catches_a_profile_without_its_required_setting(tmp_path):
    assert 'needs --set root=' in check_command('histo-i2i reproduce --profile camelyon16 --set data=runs/c16/manifests', tmp_path)
    assert check_command('histo-i2i train --data D --out R --nonsense 3', tmp_path) == "the histo-i2i parser refuses it"
    assert check_command('make nonsense', tmp_path) == "the Makefile has no target 'nonsense'"
    assert check_command('histo-i2i reproduce --profile camelyon16 --set root=/data/C16', tmp_path) is None


def test_every_documented_command_parses(tmp_path):
    bad = [f"{p.relative_to(ROOT)}: {c}\n    -> {why}" for p, c in _sources() if (why := check_command(c, tmp_path))]
    assert not bad, "documented commands that would not run:\n" + '\n'.join(bad)


def test_readme_quickstart_runs(tmp_path):
    "The README's command-line quickstart, as written, on its tiny synthetic data."
    block = next(b for b in re.findall(r'```bash\n(.*?)```', (ROOT/'README.md').read_text(), re.S) if 'histo-i2i synth' in b)
    exe = Path(sys.executable).parent/'histo-i2i'
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'}
    for cmd in doc_commands(f"```bash\n{block}```"):
        r = subprocess.run([str(exe), *shlex.split(cmd)[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{cmd}\n{r.stderr[-2000:]}"
    assert (tmp_path/'runs'/'scores.csv').exists() and (tmp_path/'runs'/'heatmap.png').exists()
