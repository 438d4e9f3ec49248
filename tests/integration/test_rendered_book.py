"""The built book, opened page by page in headless Chromium, offline.

Run after building the book::

    VAELIB_BOOK_HTML=_build/html python -m pytest tests/integration/test_rendered_book.py

It serves the HTML on 127.0.0.1, blocks every other host in the browser, and checks each page the way a
reader sees it: mathematics typeset by the locally served MathJax, every image loaded, no JavaScript
errors, display equations that fit the text column of a 1280 x 900 window, a sidebar listing every
chapter with links that resolve, launch buttons that open this page's notebook, a link to the same page
in the other edition (English at the root, Chinese under ``zh_CN/``). On the Chinese pages the page
around the text is Chinese too (no button, tooltip or label of the themes left in English), the launch
buttons say that they open the English notebook, and the characters are drawn with the font the book
serves, which has each of them. A screenshot of each page is saved to ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = os.environ.get("VAELIB_BOOK_HTML")
if not HTML:
    pytest.skip("set VAELIB_BOOK_HTML to a built book (e.g. _build/html) to run", allow_module_level=True)
HTML_DIR = Path(HTML).resolve()
SCREENSHOTS = HTML_DIR.parent / "screenshots"
CHROMIUM = os.environ.get("VAELIB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VAELIB_CHROMEDRIVER", "/usr/bin/chromedriver")
SCRIPT_TIMEOUT = 30  # seconds for a page to load and typeset; a local page needs about one
READER_WINDOW = (1280, 900)  # a laptop's browser window: display equations must fit its text column

# The themes' and Sphinx's English words, which no Chinese page may show or keep in a tooltip or label
ENGLISH_UI = {
    "Launch on Colab", "Launch on Binder", "Launch interactive content", "Color mode", "System Settings",
    "Light", "Dark", "Toggle primary sidebar", "Toggle secondary sidebar", "Link to this heading",
    "Link to this equation", "Link to this image", "Link to this definition", "Link to this table",
    "Link to this code", "Search", "Search this book...", "Contents", "Download this page",
    "Download notebook file", "Download source file", "Print to PDF", "Fullscreen mode", "Edit this page",
    "Open issue", "Open an issue", "Repository", "Source repository", "Source repositories", "previous",
    "next", "previous page", "next page", "By", "Copyright", "The vae-book authors", "Toggle hidden content",
    "Main", "Page", "Skip to main content", "Back to top", "On this page", "Section Navigation",
    "Colab logo", "Binder logo",
}  # fmt: skip
TAIWANESE_UI = ("列印", "檔案", "設定", "搜尋")  # Taiwanese forms where the mainland writes 打印, 文件, 设置, 搜索
# Latin-only UI words a Chinese page may keep: product names, keys, file types, the link to the English edition
LATIN_UI_ALLOWED = {"Colab", "Binder", "GitHub", "Ctrl", "K", "⌘", ".ipynb", ".pdf", ".md", "English"}
# (Bootstrap moves a tooltip's title to data-bs-original-title)
UI_ATTRIBUTES = ("title", "aria-label", "data-bs-title", "data-bs-original-title", "placeholder", "alt")
SERVED_FONT = "Noto Sans SC Book"  # the Chinese edition's font (book/_ext/static/chinese-font.css)
SERVED_FONT_FILE = "_static/noto-sans-sc-book.woff2"
CJK_TEXT = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")

# LaTeX that must not survive into the text a reader sees (outside code blocks)
RAW_TEX = re.compile(r"\$\$|\\frac|\\begin\{|\\mathbb|\\log\b|\\sum\b|\\mathcal|\\sigma\b")


def _toc_files() -> list[str]:
    """Every page the table of contents names, as paths without suffix (``book/intro``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            for part in entry.get("parts", []):
                walk(part.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [str(Path(f).with_suffix("")) for f in files]


TOC_FILES = _toc_files()
EDITIONS = {"": "en", "zh_CN/": "zh-CN"}  # the folder of each edition in the site, and its language
_REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
REPO = urllib.parse.urlsplit(_REPOSITORY["url"]).path.strip("/")  # owner/name
BRANCH = _REPOSITORY.get("branch", "main")
PAGES = sorted(  # the pages of both editions, not the theme's templates in either's _static
    str(p.relative_to(HTML_DIR))
    for p in HTML_DIR.rglob("*.html")
    if not {"_static", "_sources", "_images"} & set(p.relative_to(HTML_DIR).parts)
)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output readable
        pass

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":  # the browser asks for it on its own; the book has none
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(HTML_DIR)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        # offline: every host but this machine's loopback fails to resolve
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(SCRIPT_TIMEOUT)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _open(driver, url: str) -> bool:
    """Load ``url`` and wait until MathJax has typeset it; False if that never happened."""
    from selenium.common.exceptions import TimeoutException

    driver.get_log("browser")  # drop what earlier pages left
    driver.get_log("performance")
    driver.get(url)
    try:
        return driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
        const start = Date.now();
        (function wait() {
            if (document.readyState === "complete" && window.MathJax && MathJax.startup && MathJax.startup.promise) {
                MathJax.startup.promise.then(() => done(true), () => done(false));
            } else if (document.readyState === "complete" && Date.now() - start > 5000
                       && !document.querySelector(".math")) {
                done(true);  // a page without mathematics need not wait for MathJax
            } else {
                setTimeout(wait, 50);
            }
        })();"""
        )
    except TimeoutException:
        return False


def _edition(page: str) -> str:
    """The folder of the edition ``page`` belongs to: ``"zh_CN/"`` or ``""``."""
    return next(folder for folder in sorted(EDITIONS, reverse=True) if page.startswith(folder))


def test_every_toc_page_was_built_in_both_editions():
    missing = [f"{e}{f}" for e in EDITIONS for f in TOC_FILES if not (HTML_DIR / f"{e}{f}.html").exists()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_page_reads_correctly_offline(page, server, browser):
    url = urllib.parse.urljoin(server, page)
    edition = _edition(page)
    ready = _open(browser, url)
    language = browser.execute_script("return document.documentElement.lang;")
    assert language == EDITIONS[edition], f"{page}: <html lang={language!r}>"

    # nothing was fetched from outside this machine
    remote = [u for u in _requested_urls(browser) if not u.startswith((server, "data:", "blob:", "about:", "chrome"))]
    assert not remote, f"{page} requested remote resources: {remote}"
    assert ready, f"{page}: MathJax did not finish typesetting within {SCRIPT_TIMEOUT} s"

    # no JavaScript errors
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors {errors}"

    # mathematics typeset: every math element holds MathJax output, and no raw TeX is visible
    math = browser.execute_script(
        """const els = [...document.querySelectorAll('.math')];
        return [els.length, els.filter(e => e.querySelector('mjx-container') || e.tagName === 'MJX-CONTAINER').length,
                document.querySelectorAll('mjx-container').length];"""
    )
    total, typeset, containers = math
    assert typeset == total, f"{page}: {total - typeset} of {total} math elements not typeset"
    if total:
        assert containers >= total
    visible = browser.execute_script(
        """const main = (document.querySelector('main') || document.body).cloneNode(true);
        main.querySelectorAll('pre, code, .highlight, mjx-container, script, style').forEach(e => e.remove());
        return main.innerText;"""
    )
    raw = sorted(set(RAW_TEX.findall(visible)))
    assert not raw, f"{page}: raw TeX visible in the text: {raw}"

    # every display equation fits the text column at the reader's window width: none scrolls sideways
    browser.set_window_size(*READER_WINDOW)
    wide = browser.execute_script(
        """return [...document.querySelectorAll('mjx-container[display="true"]')].filter(c => {
            const column = (c.closest('.math') || c.parentElement).getBoundingClientRect();
            return c.scrollWidth > c.clientWidth + 1 || c.getBoundingClientRect().right > column.right + 1;
        }).map(c => (c.closest('[id]') || c).id || c.textContent.slice(0, 60));"""
    )
    browser.set_window_size(1280, 1000)
    assert not wide, f"{page}: display equations wider than the text column at {READER_WINDOW}: {wide}"

    # every image has loaded
    broken = browser.execute_script(
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);"
    )
    assert not broken, f"{page}: images that did not load: {broken}"

    # the sidebar lists every chapter, and its links resolve
    sidebar = browser.execute_script(
        """return [...document.querySelectorAll(
            '.bd-sidebar-primary a.reference.internal, .bd-sidebar-primary a.navbar-brand')].map(a => a.href);"""
    )
    listed = {urllib.parse.urlsplit(h).path.lstrip("/") for h in sidebar}
    for f in TOC_FILES[1:]:  # the root is the landing page (the logo / title link)
        assert f"{edition}{f}.html" in listed, f"{page}: sidebar does not list {edition}{f}"
    for href in sidebar:
        target = urllib.parse.urldefrag(href).url
        try:
            with urllib.request.urlopen(target) as response:
                assert response.status == 200, f"{page}: sidebar link {href} -> {response.status}"
        except urllib.error.HTTPError as err:
            pytest.fail(f"{page}: sidebar link {href} -> HTTP {err.code}")

    # a page of the book links to the same page in the other edition, and that page links back
    stem = page.removesuffix(".html").removeprefix(edition)
    if stem in TOC_FILES:
        switch = browser.execute_script(
            "return [...document.querySelectorAll('.edition-switch a')].map(a => [a.href, a.lang]);"
        )
        other = next(e for e in EDITIONS if e != edition)
        assert switch == [[urllib.parse.urljoin(server, f"{other}{stem}.html"), EDITIONS[other]]], switch
        with urllib.request.urlopen(switch[0][0]) as response:
            twin = response.read().decode()
        back = urllib.parse.quote("../" * stem.count("/") + ("../" if other else edition) + f"{stem}.html", safe="/.")
        assert f'href="{back}"' in twin, f"{page}: the other edition's page does not link back ({back})"

    # launch buttons open this page's notebook in Colab and Binder (the same notebook in both editions)
    source = ROOT / f"{stem}.ipynb"
    if source.exists():
        links = browser.execute_script("return [...document.querySelectorAll('a')].map(a => a.href);")
        colab = [h for h in links if h.startswith("https://colab.research.google.com/")]
        binder = [h for h in links if h.startswith("https://mybinder.org/")]
        assert colab == [f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{stem}.ipynb"], colab
        assert len(binder) == 1 and binder[0].startswith(f"https://mybinder.org/v2/gh/{REPO}/{BRANCH}?"), binder
        assert urllib.parse.quote(f"{stem}.ipynb", safe="") in binder[0] or f"{stem}.ipynb" in binder[0], binder

    if edition == "zh_CN/":
        _check_chinese_page_around_the_text(browser, page, has_notebook=source.exists())
        _check_served_font(browser, page)

    # a screenshot of the whole page for a human to look at
    height = browser.execute_script("return document.documentElement.scrollHeight;")
    browser.set_window_size(1280, min(max(height, 800), 12000))
    browser.save_screenshot(str(SCREENSHOTS / (page.replace("/", "__").removesuffix(".html") + ".png")))
    browser.set_window_size(1280, 1000)


def _check_chinese_page_around_the_text(browser, page: str, has_notebook: bool) -> None:
    """No English word of the themes on a Chinese page; the launch buttons say their notebook is English."""
    ui = browser.execute_script(
        """const names = arguments[0];
        // the text's own attributes (a citation's title) are the page's; its links to headings and buttons are UI
        const content = el => (el.closest('article.bd-article') && !el.matches('a.headerlink, summary'))
            || el.matches('.prev-next-area a, head *');  // their titles are the next and previous pages'
        // page and section titles (the API page stays English), the link to the English edition
        const titles = '.bd-sidebar-primary a.reference, .toc-entry, #jb-print-docs-body, .prev-next-title,'
            + ' .navbar-brand, .edition-switch';
        const attributes = [];
        for (const el of document.querySelectorAll(names.map(n => `[${n}]`).join(','))) {
            if (content(el)) continue;
            for (const name of names) if (el.hasAttribute(name)) attributes.push([name, el.getAttribute(name)]);
        }
        const texts = [];  // every text outside the article, shown or in a menu, but not titles
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const node = walker.currentNode, el = node.parentElement;
            if (!node.textContent.trim() || el.closest('script, style, noscript, article.bd-article')) continue;
            if (el.closest(titles)) continue;
            texts.push(node.textContent.trim().replace(/\\s+/g, ' '));
        }
        return [attributes, texts];""",
        list(UI_ATTRIBUTES),
    )
    attributes, texts = ui
    english = sorted({f"{n}={v!r}" for n, v in attributes if v.strip() in ENGLISH_UI} | set(ENGLISH_UI & set(texts)))
    assert not english, f"{page}: English words of the theme on a Chinese page: {english}"
    everything = " ".join(texts + [v for _, v in attributes])
    taiwanese = [w for w in TAIWANESE_UI if w in everything]
    assert not taiwanese, f"{page}: Taiwanese forms on a simplified Chinese page: {taiwanese}"
    latin = sorted(
        {t for t in texts + [v for _, v in attributes] if re.search("[A-Za-z]", t) and not CJK_TEXT.search(t)}
        - LATIN_UI_ALLOWED
    )
    assert not latin, f"{page}: labels in Latin letters only on a Chinese page (translate them): {latin}"

    launch = browser.execute_script(
        """return [...document.querySelectorAll('a')].filter(a => /colab|mybinder/.test(a.href))
            .map(a => a.getAttribute('data-bs-original-title') || a.title);"""
    )
    note = browser.execute_script(
        "const n = document.querySelector('.edition-notebook-note'); return n ? n.innerText : null;"
    )
    if has_notebook:
        assert launch and all("英文" in title for title in launch), f"{page}: launch buttons' tooltips {launch}"
        assert note and "英文" in note and "Colab" in note, f"{page}: no note that Colab opens the English notebook"
    else:
        assert note is None, f"{page}: a launch note on a page without a notebook"


def _check_served_font(browser, page: str) -> None:
    """The served font is loaded, sets the text, draws the Chinese characters and has every one the page shows."""
    state = browser.execute_async_script(
        """const [family, done] = [arguments[0], arguments[arguments.length - 1]];
        document.fonts.ready.then(() => {
            const faces = [...document.fonts].filter(f => f.family.replace(/["']/g, '') === family);
            const paragraph = document.querySelector('article.bd-article p') || document.body;
            done({faces: faces.map(f => f.status), family: getComputedStyle(paragraph).fontFamily,
                  text: document.body.innerText + ' ' + [...document.querySelectorAll('[title], [aria-label],'
                        + ' [data-bs-title], [placeholder]')].map(e => [e.title, e.getAttribute('aria-label'),
                        e.getAttribute('data-bs-title'), e.placeholder].join(' ')).join(' ')});
        });""",
        SERVED_FONT,
    )
    faces = state["faces"] or "not declared"
    assert state["faces"] == ["loaded"], f"{page}: the served font {SERVED_FONT!r} is {faces}"
    assert SERVED_FONT in state["family"], f"{page}: the text is set in {state['family']}, not the served font"
    shown = set(CJK_TEXT.findall(state["text"]))
    lacking = sorted(shown - _served_font_characters())
    assert not lacking, f"{page}: the served font lacks {''.join(lacking)} (run python book/cjk_font.py)"

    # the book's title in the sidebar is all Chinese: the browser draws it with the served font only, whatever
    # fonts this machine has (the font comes first in the CSS, and its glyphs cover every Chinese character shown)
    browser.execute_cdp_cmd("DOM.enable", {})
    browser.execute_cdp_cmd("CSS.enable", {})
    root = browser.execute_cdp_cmd("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    title = browser.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": ".navbar-brand .logo__title"})
    fonts = browser.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": title["nodeId"]})["fonts"]
    browser.execute_cdp_cmd("CSS.disable", {})
    browser.execute_cdp_cmd("DOM.disable", {})
    system = [(f["familyName"], f["glyphCount"]) for f in fonts if not f["isCustomFont"]]
    assert fonts and not system, (
        f"{page}: the book's title is drawn with this machine's {system}, not (only) the served font"
    )


@functools.cache
def _served_font_characters() -> set[str]:
    ttlib = pytest.importorskip("fontTools.ttLib")
    pytest.importorskip("brotli")
    with ttlib.TTFont(HTML_DIR / "zh_CN" / SERVED_FONT_FILE) as font:
        return {chr(c) for c in font.getBestCmap()}


def test_the_english_edition_loads_no_chinese_font():
    page = (HTML_DIR / "book" / "02_lower_bound.html").read_text()
    assert "chinese-font.css" not in page and not (HTML_DIR / SERVED_FONT_FILE).exists()


def test_mathjax_is_served_from_the_site():
    bundle = HTML_DIR / "_static" / "mathjax" / "tex-mml-chtml.js"
    assert bundle.is_file() and bundle.stat().st_size > 100_000
    fonts = list((HTML_DIR / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert fonts, "MathJax's web fonts were not copied"


def test_the_chinese_edition_finds_chinese_words(server, browser):
    """Sphinx indexes the Chinese edition's words with jieba: a search for a term finds its chapter."""
    query = urllib.parse.quote("重参数化")  # reparameterisation: chapter 4's subject
    browser.get(urllib.parse.urljoin(server, f"zh_CN/search.html?q={query}"))
    found = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        const start = Date.now();
        (function wait() {
            const links = [...document.querySelectorAll('#search-results li a')].map(a => a.getAttribute('href'));
            if (links.length || Date.now() - start > 20000) { done(links); } else { setTimeout(wait, 100); }
        })();"""
    )
    assert any("04_monte_carlo_and_reparameterisation" in link for link in found), found
