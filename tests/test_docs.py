"""The documentation site: `tools/docs.py` (what `make docs` runs) builds it from the notebooks into a temporary folder;
every page exists, no link inside the site is broken, and headless Chromium loads the home page and an API page with
every image decoded. Without Chromium the browser test skips, except under CI (CI=true), where it fails."""
import html, json, os, re, shutil, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.docs import build, all_notebooks, read_sidebar, page_name

NBS = ROOT/'nbs'
API_PAGE = '17_metrics.ipynb'   # the API page opened in the browser (it stores a figure among its outputs)


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


_PROBE = """<script>
window.addEventListener('load', function () {
  var out = {title: document.title,
    images: Array.from(document.images).map(function (i) {
      return {src: (i.getAttribute('src') || '').slice(0, 60), complete: i.complete, width: i.naturalWidth}; }),
    links: Array.from(document.querySelectorAll('a[href]')).map(function (a) { return a.getAttribute('href'); })};
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


@pytest.mark.parametrize('notebook', ['index.ipynb', API_PAGE])
def test_page_in_chromium(chromium, site, notebook, tmp_path):
    "Requests `chromium` first, so that a machine without it skips before building the site."
    exe = chromium
    page = site/page_name(notebook)
    seen = _open_in_chromium(exe, page, tmp_path)
    assert seen['title'], f"{page.name} has no title"
    if notebook == 'index.ipynb': assert len(seen['images']) >= 3, f"the home page shows {len(seen['images'])} pictures"
    bad = [i['src'] for i in seen['images'] if not (i['complete'] and i['width'] > 0)]
    assert not bad, f"{page.name}: images that did not load: {bad}"
    broken = [h for h in seen['links'] if (t := _local_target(page, h)) is not None and not t.is_file()]
    assert not broken, f"{page.name}: links in the loaded page that lead nowhere: {broken}"
    sidebar = [h for h in seen['links'] if h.endswith('.html')]
    assert len(sidebar) >= len(all_notebooks(NBS)), f"{page.name}: the sidebar links only {len(sidebar)} pages"
