"""The documentation site: `tools/docs.py` (what `make docs` runs: nbdev's processors, then nbconvert) builds it from the
notebooks into a temporary folder; every page exists, no link inside the site is broken, `show_doc` tables render, and
headless Chromium loads the home page, an API page and a paper notebook with every image decoded. Without Chromium the
browser tests skip, except under CI (CI=true), where they fail."""
import html, json, os, re, shutil, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.docs import build, all_notebooks, read_sidebar, exporter, for_nbconvert, site_link

NBS = ROOT/'nbs'
API_PAGE = '17_metrics.ipynb'   # the API page opened in the browser (it stores a figure among its outputs)
PAPER_PAGE = 'paper/08_real_tissue.ipynb'   # the paper notebook opened in the browser (figures and tables)


def page_name(rel:str) -> str:
    "nbdev's and Quarto's page of a notebook: the number prefix goes, `paper/08_real_tissue.ipynb` -> `paper/real_tissue.html`."
    return '/'.join(re.sub(r'^\d+[a-z]?_', '', p) for p in Path(rel).with_suffix('.html').parts)


@pytest.fixture(scope='module')
def chromium() -> str:
    exe = next((shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(n)), None)
    if exe: return exe
    if os.environ.get('CI', '').lower() in ('true', '1'):
        pytest.fail("chromium is not installed but CI=true: .ci/run installs it with apt-get install chromium")
    pytest.skip("chromium is not installed (apt-get install chromium); under CI=true this test fails instead of skipping")


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    return build(tmp_path_factory.mktemp('site')/'_docs', workers=2, log=print)


def test_sidebar_lists_every_notebook_once():
    groups = read_sidebar(NBS)
    listed = [n for _, ns in groups for n in ns]
    dupes = sorted({n for n in listed if listed.count(n) > 1})
    assert not dupes, f"nbs/sidebar.yml lists {dupes} more than once"
    missing, gone = sorted(set(all_notebooks(NBS)) - set(listed)), sorted(set(listed) - set(all_notebooks(NBS)))
    assert not missing, f"nbs/sidebar.yml does not list {missing}: add them where they sit in the pipeline"
    assert not gone, f"nbs/sidebar.yml lists {gone}, which do not exist under nbs/"
    assert listed[0] == 'index.ipynb', "the home page (index.ipynb) comes first in nbs/sidebar.yml"
    paper = dict(groups).get('Reproduce the paper', [])
    assert sorted(paper) == sorted(n for n in listed if n.startswith('paper/')), \
        "every notebook under nbs/paper/ belongs in the sidebar's 'Reproduce the paper' section, and only those"


def test_one_page_per_notebook(site):
    assert (site/'index.html').exists()
    missing = [n for n in all_notebooks(NBS) if not (site/page_name(n)).exists()]
    assert not missing, f"no page for {missing} in {site}"


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(); self.refs = []
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ('href', 'src') and v: self.refs.append(v)


def _local_target(page:Path, ref:str):
    "The file a relative link of `page` points at, or None for links leaving the site."
    u = urlparse(ref)
    if u.scheme or u.netloc or ref.startswith('#') or not u.path: return None
    return (page.parent/unquote(u.path)).resolve()


def test_no_broken_link_inside_the_site(site):
    broken = []
    for page in sorted(site.rglob('*.html')):
        p = _Refs(); p.feed(page.read_text(encoding='utf-8'))
        for ref in p.refs:
            t = _local_target(page, ref)
            if t is not None and not (t.is_file() and t.is_relative_to(site.resolve())):
                broken.append(f"{page.relative_to(site)}: {ref}")
    assert not broken, "links inside the site that lead nowhere:\n" + '\n'.join(broken[:40])


def _documented(labels, # 0 = healthy, 1 = cancerous
               scores:float=0.5, # higher = more anomalous
              )->float: # the answer
    "A function documented with docments."


def test_show_doc_renders():
    """nbdev's `show_doc` Markdown (source link with Quarto's `{target=...}`, heading, signature, docstring) and fastcore's
    docments table (what `show_doc` showed before nbdev 2.4) through the site's nbconvert exporter."""
    import nbformat
    from nbdev.showdoc import show_doc
    from fastcore.docments import DocmentTbl
    md = show_doc(_documented)._repr_markdown_() + '\n\n' + DocmentTbl(_documented)._repr_markdown_()
    md += '\n\n[elsewhere](https://example.org){target="_blank"}'
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('#| echo: false\nshow_doc(_documented)', outputs=[
        nbformat.v4.new_output('execute_result', data={'text/markdown': md})])])
    page, _ = exporter().from_notebook_node(for_nbconvert(nb, lambda u: u), resources=dict(site=dict(
        name='t', title='t', description='', root='', nav=[])))
    assert re.search(r'<h3 id="_documented"', page), "show_doc's heading did not render"
    assert re.search(r'<pre>.*def.*_documented', page, re.S), "show_doc's signature is not a code block"
    table = re.search(r'<table.*?</table>', page, re.S)
    assert table and 'higher = more anomalous' in table[0], "the docments table is not an HTML table"
    assert '{target=' not in page and 'show_doc(_documented)' not in page, "Quarto-only syntax or the hidden source shows"


def test_site_links():
    pages = {'17_metrics.ipynb': 'metrics.html', 'paper/08_real_tissue.ipynb': 'paper/real_tissue.html', 'index.ipynb': 'index.html'}
    base, repo = 'https://h.io/lib', 'https://github.com/o/r/blob/main'
    link = lambda u, nb='paper/08_real_tissue.ipynb': site_link(u, nb, pages, base, repo)
    assert link('../17_metrics.ipynb#auc') == '../metrics.html#auc'
    assert link('https://h.io/lib/metrics.html#auc') == '../metrics.html#auc'
    assert link('https://h.io/lib/index.html', 'index.ipynb') == 'index.html'
    assert link('../../bench/README.md') == 'https://github.com/o/r/blob/main/bench/README.md'
    assert link('../images/a.png') == '../images/a.png'
    assert link('https://example.org/x.ipynb') == 'https://example.org/x.ipynb' and link('#top') == '#top'


_PROBE = r"""<script>
window.addEventListener('load', function () {
  var md = Array.from(document.querySelectorAll('.jp-RenderedMarkdown'));
  var out = {title: document.title,
    images: Array.from(document.images).map(function (i) {
      return {src: (i.getAttribute('src') || '').slice(0, 60), complete: i.complete, width: i.naturalWidth}; }),
    links: Array.from(document.querySelectorAll('a[href]')).map(function (a) { return a.getAttribute('href'); }),
    tables: document.querySelectorAll('main table').length,
    show_docs: md.filter(function (e) { return e.querySelector('h3[id]') && e.querySelector('pre'); }).length,
    quarto: /\{target=|^:::/m.test(document.body.innerText)};
  var pre = document.createElement('pre'); pre.id = 'page-probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _open_in_chromium(exe:str, page:Path, tmp:Path) -> dict:
    "Load a copy of `page` (beside it, so relative paths hold) with a probe script; what the probe saw after `load`."
    probe = page.with_name(page.stem + '.probe.html')
    probe.write_text(page.read_text(encoding='utf-8').replace('</body>', _PROBE + '</body>'), encoding='utf-8')
    cmd = [exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
           f'--user-data-dir={tmp}', '--virtual-time-budget=20000', '--dump-dom', probe.as_uri()]
    try: r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally: probe.unlink()
    m = re.search(r'<pre id="page-probe">(.*?)</pre>', r.stdout, re.S)
    assert m, f"Chromium did not run the page's load handler for {page.name} (exit {r.returncode}):\n{r.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


@pytest.mark.parametrize('notebook', ['index.ipynb', API_PAGE, PAPER_PAGE])
def test_page_in_chromium(chromium, site, notebook, tmp_path):
    "Requests `chromium` first, so that a machine without it skips before building the site."
    page = site/page_name(notebook)
    seen = _open_in_chromium(chromium, page, tmp_path)
    assert seen['title'], f"{page.name} has no title"
    assert seen['images'], f"{page.name} shows no figure"
    bad = [i['src'] for i in seen['images'] if not (i['complete'] and i['width'] > 0)]
    assert not bad, f"{page.name}: images that did not load: {bad}"
    broken = [h for h in seen['links'] if (t := _local_target(page, h)) is not None and not t.is_file()]
    assert not broken, f"{page.name}: links in the loaded page that lead nowhere: {broken}"
    sidebar = [h for h in seen['links'] if h.endswith('.html')]
    assert len(sidebar) >= len(all_notebooks(NBS)), f"{page.name}: the sidebar links only {len(sidebar)} pages"
    assert not seen['quarto'], f"{page.name} shows Quarto-only Markdown as text"
    if notebook == API_PAGE: assert seen['show_docs'] >= 5, f"{page.name}: only {seen['show_docs']} show_doc blocks rendered"
    if notebook != API_PAGE: assert seen['tables'], f"{page.name}: its results table did not render"
