"""The rendered book in a real browser: Debian chromium driven by playwright.

The session fixture ``real_book`` (conftest.py, real_book.py) builds the real book
(``analyses.yml``, ``book/``, ``notebooks/``, ``data/``) into a temporary copy in which
every registry text that can reach a page (labels, designs, interventions, cut-offs, notes)
ends in ``<b>Bold</b> <script>window.__xss = 1</script>``; this module serves its
``_build/html`` on
127.0.0.1 and checks, page by page of ``_toc.yml``: HTTP 200, no console or page
errors, every image decoded, no request leaving 127.0.0.1; navigation, search,
downloads; and that the label shows as text, never as markup (its script must
run on no page).

The module is skipped when chromium or playwright is missing, unless
``EVIDENCE_REQUIRE_BROWSER=1`` (CI), in which case it fails.  Never run
``playwright install``: the Debian chromium is used.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from real_book import TRICKY_STUDY, RealBook

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
SEARCH_TERM = "Pestrin"
ORR_OUTCOME = "objective_response"


def _why_not() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python playwright is not installed (pip install playwright; no browser download)"
    return None


_WHY_NOT = _why_not()
_REQUIRED = os.environ.get("EVIDENCE_REQUIRE_BROWSER") == "1"
if _WHY_NOT is not None and not _REQUIRED:
    pytest.skip(_WHY_NOT, allow_module_level=True)


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    """With EVIDENCE_REQUIRE_BROWSER=1 a missing browser fails every test here (no skip)."""
    if _WHY_NOT is not None:
        pytest.fail(f"EVIDENCE_REQUIRE_BROWSER=1 but the browser tests cannot run: {_WHY_NOT}",
                    pytrace=False)


@dataclass
class Book:
    """The built copy of the book and where it is served."""

    root: Path
    base_url: str
    pages: list[str]  # TOC pages in order, as URLs relative to base_url
    tricky_label: str

    def url(self, page: str) -> str:
        """Absolute URL of a page relative to the HTML root."""
        return self.base_url + page


@dataclass
class PageLog:
    """What one browser context saw."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and HTTP errors, in one list."""
        return self.console_errors + self.page_errors + self.bad_responses


def _automatic_favicon(url: str) -> bool:
    """Chromium asks for /favicon.ico by itself when a page declares no icon."""
    return urlsplit(url).path == "/favicon.ico"


def _toc_files(entries: list[dict[str, Any]]) -> Iterator[str]:
    for entry in entries:
        if "file" in entry:
            yield entry["file"]
        for key in ("parts", "chapters", "sections"):
            yield from _toc_files(entry.get(key, []))


def toc_pages(toc_path: Path) -> list[str]:
    """HTML pages (relative URLs) of a jb-book ``_toc.yml``, in reading order."""
    import yaml

    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    files = [toc["root"], *_toc_files(toc.get("parts", []) + toc.get("chapters", []))]
    return [re.sub(r"\.(md|ipynb|rst)$", "", f) + ".html" for f in files]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def book(_browser_available: None, real_book: RealBook) -> Iterator[Book]:
    """The real book, built once with the tricky label (conftest), served on 127.0.0.1."""
    root, label = real_book.root, real_book.tricky_label
    html = root / "_build" / "html"
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Book(root, f"http://127.0.0.1:{server.server_address[1]}/",
                   toc_pages(root / "_toc.yml"), label)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def browser(_browser_available: None) -> Iterator[Any]:
    """Debian chromium, headless, with the background networking flags."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


def _context(browser: Any, book: Book) -> tuple[Any, Any, PageLog]:
    """A fresh context and page that record errors and requests; remote requests abort."""
    log = PageLog()
    context = browser.new_context()

    def route(r: Any) -> None:
        if r.request.url.startswith(book.base_url):
            r.continue_()
        else:
            r.abort()

    context.route("**/*", route)
    page = context.new_page()

    def console(message: Any) -> None:
        source = message.location.get("url", "")
        if message.type == "error" and not _automatic_favicon(source):
            log.console_errors.append(f"{page.url}: console error: {message.text} ({source})")

    def response(r: Any) -> None:
        if r.status >= 400 and not _automatic_favicon(r.url):
            log.bad_responses.append(f"{page.url}: HTTP {r.status} for {r.url}")

    page.on("console", console)
    page.on("pageerror", lambda e: log.page_errors.append(f"{page.url}: uncaught: {e}"))
    page.on("request", lambda r: log.requests.append(r.url))
    page.on("response", response)
    return context, page, log


_BROKEN_IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(img => { img.loading = "eager"; });
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done);
    setTimeout(done, 5000);
  })));
  return imgs.filter(img => !(img.naturalWidth > 0))
             .map(img => img.currentSrc || img.src || img.outerHTML.slice(0, 120));
}"""


def _local(url: str, book: Book) -> bool:
    return url.startswith(book.base_url) or url.split(":", 1)[0] in ("data", "blob", "about")


#: Elements made from the planted markup: a <b>Bold</b>, or a <script> holding its code.
_PLANTED_ELEMENTS_JS = (
    "Array.from(document.querySelectorAll('b, strong')).filter(e => e.textContent === 'Bold')"
    ".length + Array.from(document.scripts).filter(s => s.text.includes('__xss')).length")


def test_toc_is_not_empty(book: Book) -> None:
    assert len(book.pages) >= 2, book.pages
    for page in book.pages:
        assert (book.root / "_build" / "html" / page).is_file(), page


def test_every_page_loads_without_errors_images_or_remote_requests(browser: Any,
                                                                   book: Book) -> None:
    context, page, log = _context(browser, book)
    problems: list[str] = []
    try:
        for rel in book.pages:
            response = page.goto(book.url(rel), wait_until="load")
            if response is None or response.status != 200:
                problems.append(f"{rel}: HTTP {response.status if response else 'no response'}")
                continue
            for src in page.evaluate(_BROKEN_IMAGES_JS):
                problems.append(f"{rel}: image not decoded: {src}")
            if page.evaluate("typeof window.__xss") != "undefined":
                problems.append(f"{rel}: the planted label's <script> ran (unescaped HTML)")
            if page.evaluate(_PLANTED_ELEMENTS_JS):
                problems.append(f"{rel}: planted registry markup became an element")
    finally:
        context.close()
    problems += log.errors
    problems += [f"request leaves 127.0.0.1: {u}" for u in log.requests if not _local(u, book)]
    assert not problems, "\n".join(problems)
    assert len({u for u in log.requests if u.endswith(".html")}) >= len(book.pages)


def test_next_link_and_sidebar_links(browser: Any, book: Book) -> None:
    context, page, log = _context(browser, book)
    try:
        page.goto(book.url("index.html"), wait_until="load")
        page.wait_for_url(book.url(book.pages[0]) + "*")
        page.locator("a.right-next").first.click()
        page.wait_for_load_state("load")
        assert urlsplit(page.url).path == urlsplit(book.url(book.pages[1])).path
        hrefs = page.eval_on_selector_all(
            "nav.bd-docs-nav a[href], .bd-sidebar-primary a.reference.internal[href]",
            "links => links.map(a => a.href)")
        targets = {urljoin(page.url, h).split("#", 1)[0] for h in hrefs}
        for url in sorted(targets):
            response = context.request.get(url)
            assert response.status == 200, f"sidebar link {url}: HTTP {response.status}"
    finally:
        context.close()
    listed = {urlsplit(u).path for u in targets}
    missing = [p for p in book.pages[1:] if urlsplit(book.url(p)).path not in listed]
    assert not missing, f"TOC pages missing from the sidebar: {missing}"
    assert not log.errors, "\n".join(log.errors)


def test_search_finds_a_study(browser: Any, book: Book) -> None:
    context, page, _ = _context(browser, book)
    try:
        page.goto(book.url(f"search.html?q={SEARCH_TERM}"), wait_until="load")
        page.wait_for_selector("#search-results ul.search li", timeout=20_000)
        hrefs = page.eval_on_selector_all("#search-results ul.search li a[href]",
                                          "links => links.map(a => a.href)")
    finally:
        context.close()
    assert hrefs, f"search for {SEARCH_TERM!r} lists nothing"
    html = book.root / "_build" / "html"
    found = {urlsplit(h).path.removeprefix(urlsplit(book.base_url).path) for h in hrefs}
    for rel in found:  # every hit is a page that names the study
        assert SEARCH_TERM in (html / rel).read_text(encoding="utf-8"), rel
    assert _registry_page(book) in found, f"the registry chapter is not among {sorted(found)}"


def _analysis_pages(book: Book) -> list[str]:
    return [p for p in book.pages if p.startswith("book/analyses/")]


def test_every_analysis_offers_working_downloads(browser: Any, book: Book) -> None:
    pages = _analysis_pages(book)
    assert pages, "no analysis page in _toc.yml"
    context, page, _ = _context(browser, book)
    try:
        for rel in pages:
            page.goto(book.url(rel), wait_until="load")
            hrefs = page.eval_on_selector_all("a.download", "links => links.map(a => a.href)")
            assert hrefs, f"{rel}: no download link"
            names = {urlsplit(h).path.rsplit("/", 1)[-1] for h in hrefs}
            assert any(n.endswith(".json") for n in names), f"{rel}: no JSON download {names}"
            aid = rel.rsplit("/", 1)[-1].removesuffix(".html")
            if (book.root / "results" / f"{aid}.R").is_file():  # a pooled analysis
                assert {f"{aid}.R", f"{aid}.csv"} <= names, f"{rel}: no R script {names}"
            for href in hrefs:
                response = context.request.get(href)
                assert response.status == 200, f"{rel}: {href}: HTTP {response.status}"
                body = response.body()
                assert body, f"{rel}: {href}: empty body"
                if href.endswith(".json"):
                    json.loads(body)
    finally:
        context.close()


def _orr_page(book: Book) -> str:
    import yaml

    config = yaml.safe_load((book.root / "analyses.yml").read_text(encoding="utf-8"))
    ids = [a["id"] for a in config["analyses"]
           if a.get("parameters", {}).get("outcome") == ORR_OUTCOME]
    assert ids, f"no analysis of outcome {ORR_OUTCOME!r} in analyses.yml"
    result = json.loads((book.root / "results" / f"{ids[0]}.json").read_text(encoding="utf-8"))
    assert TRICKY_STUDY in json.dumps(result.get("studies", [])), (
        f"{TRICKY_STUDY} is not in analysis {ids[0]}; pick another TRICKY_STUDY")
    return f"book/analyses/{ids[0]}.html"


def _registry_page(book: Book) -> str:
    html = book.root / "_build" / "html"
    for rel in book.pages:
        title = re.search(r"<title>(.*?)</title>", (html / rel).read_text(encoding="utf-8"), re.S)
        if "registry" in rel.lower() or (title and "registry" in title.group(1).lower()):
            return rel
    pytest.fail(f"no registry chapter among the TOC pages {book.pages}")


@pytest.mark.parametrize("which", ["registry chapter", "objective-response analysis"])
def test_tricky_label_renders_as_text(browser: Any, book: Book, which: str) -> None:
    rel = _registry_page(book) if which == "registry chapter" else _orr_page(book)
    context, page, _ = _context(browser, book)
    try:
        page.goto(book.url(rel), wait_until="load")
        assert page.evaluate("typeof window.__xss") == "undefined", f"{rel}: script ran"
        bold = page.evaluate("Array.from(document.querySelectorAll('b, strong'))"
                             ".filter(e => e.textContent === 'Bold').length")
        assert bold == 0, f"{rel}: the label's <b> became an element"
        text = page.inner_text("body")
        assert "<b>Bold</b>" in text, f"{rel}: the label's markup is not shown as text"
        assert "window.__xss = 1" in text, f"{rel}: the label's script tag is not shown as text"
    finally:
        context.close()


_OVERFLOW_JS = ("document.documentElement.scrollWidth > window.innerWidth + 1 ? "
                "Array.from(document.querySelectorAll('main *')).filter(e => "
                "e.getBoundingClientRect().right > window.innerWidth + 1 && "
                "!e.closest('.table-wrapper, .cell_output, figure, .highlight, pre'))"
                ".slice(0, 3).map(e => e.tagName + '.' + e.className).join(', ') || 'page' : ''")


def test_appraisal_and_bottom_line_pages_render(browser: Any, book: Book) -> None:
    """The summary of findings (GRADE symbols), the traffic-light figures, a forest plot
    with its risk-of-bias column, and the Key findings boxes, with no horizontal overflow
    at 1280 and 390 px."""
    context, page, log = _context(browser, book)
    problems: list[str] = []
    try:
        page.goto(book.url("book/analyses/summary.html"), wait_until="load")
        cells = page.locator("table td").all_inner_texts()
        if not any("⊕" in c for c in cells):
            problems.append("summary: no GRADE certainty symbol in its table")
        page.goto(book.url("book/analyses/risk_of_bias.html"), wait_until="load")
        alts = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.alt)")
        if sum("Traffic-light plot" in a for a in alts) < 5:
            problems.append(f"risk_of_bias: {sum('Traffic-light' in a for a in alts)} "
                            "traffic-light figures, expected one per tool")
        page.goto(book.url("book/analyses/orr.html"), wait_until="load")
        alts = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.alt)")
        if not any("risk of bias" in a for a in alts):
            problems.append("orr: the forest plot's alt text does not mention risk of bias")
        for chapter in ("response", "screening", "conversion", "recurrence", "randomised",
                        "prognosis"):
            page.goto(book.url(f"book/{chapter}.html"), wait_until="load")
            if page.locator(".key-findings li").count() < 1:
                problems.append(f"{chapter}: no Key findings box")
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            for rel in ("book/analyses/summary.html", "book/analyses/risk_of_bias.html",
                        "book/analyses/orr.html", "book/conversion.html", "book/intro.html"):
                page.goto(book.url(rel), wait_until="load")
                wide = page.evaluate(_OVERFLOW_JS)
                if wide:
                    problems.append(f"{rel} at {width} px overflows horizontally: {wide}")
    finally:
        context.close()
    assert not problems + log.errors, "\n".join(problems + log.errors)


#: The smallest share of its natural size a figure may be shown at: its 9-point text is
#: 12.5 px at 100 dpi, so 0.72 keeps it at 9 CSS px (the evidence.js rule).
_LEGIBLE_SCALE = 0.72
_FIGURE_SCALES_JS = ("Array.from(document.querySelectorAll(\"main img[src*='_images/']\"))"
                     ".filter(i => i.naturalWidth > 0).map(i => [i.getAttribute('src'), "
                     "i.getBoundingClientRect().width / i.naturalWidth])")


_TEXT_PATTERNS = ((r"\bNaN\b|\bnan\b", "NaN"), (r"\b\d+\.000000\b", "float noise"),
                  (r"(?<![\w.])[-−]\d+(?:\.\d+)?\s?%", "negative percentage"))


def _text_problems(text: str, raw_outputs: int) -> list[str]:
    """What a reader must never see in a page's text: NaN, float noise such as
    '60.000000', a negative percentage, or a code cell's raw plain-text output."""
    found = [f"{what} {re.findall(pattern, text)[:3]}" for pattern, what in _TEXT_PATTERNS
             if re.search(pattern, text)]
    return found + ([f"{raw_outputs} raw code output(s)"] if raw_outputs else [])


def test_no_page_scrolls_sideways_and_figure_text_stays_legible(browser: Any,
                                                                book: Book) -> None:
    """Every page at 1280 px and at a 390 px phone: the page never scrolls horizontally
    (wide tables and figures scroll inside their own box), and on the phone no figure is
    shown so small that its text falls below 9 CSS px; no page's text shows NaN, float
    noise, a negative percentage or a code cell's raw output."""
    context, page, log = _context(browser, book)
    problems: list[str] = []
    try:
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 844})
            for rel in book.pages:
                page.goto(book.url(rel), wait_until="load")
                wide = page.evaluate(_OVERFLOW_JS)
                if wide:
                    problems.append(f"{rel} at {width} px overflows horizontally: {wide}")
                if width == 1280:
                    problems += [f"{rel}: {what}" for what in _text_problems(
                        page.inner_text("main"), page.locator("main .output.text_plain, "
                                                              "main .output_text").count())]
                for src, scale in page.evaluate(_FIGURE_SCALES_JS) if width == 390 else []:
                    if scale < _LEGIBLE_SCALE - 0.005:
                        problems.append(f"{rel} at {width} px: {src} shown at {scale:.0%} of "
                                        "its size (text below 9 px)")
    finally:
        context.close()
    assert not problems + log.errors, "\n".join(problems + log.errors)


def test_forest_plots_stay_legible_on_a_phone(browser: Any, book: Book) -> None:
    """At 390 px a forest-type figure (class evidence-forest) is not shrunk below the size
    at which its 9-point text is 9 CSS px (12.5 px at the figures' 100 dpi, so at least
    72% of its natural width): it scrolls inside its figure, and the page does not."""
    context, page, log = _context(browser, book)
    problems: list[str] = []
    try:
        page.set_viewport_size({"width": 390, "height": 900})
        for rel in ("book/analyses/orr.html", "book/analyses/pfs_hazard_ratios.html",
                    "book/analyses/two_arm.html"):
            page.goto(book.url(rel), wait_until="load")
            sizes = page.eval_on_selector_all(
                "figure.evidence-forest img",
                "imgs => imgs.map(i => [i.getBoundingClientRect().width, i.naturalWidth])")
            if not sizes:
                problems.append(f"{rel}: no forest figure")
            for shown, natural in sizes:
                if shown < 0.72 * natural:
                    problems.append(f"{rel}: forest shown at {shown:.0f} of {natural} px: "
                                    f"text {12.5 * shown / natural:.1f} CSS px")
            wide = page.evaluate(_OVERFLOW_JS)
            if wide:
                problems.append(f"{rel} at 390 px overflows horizontally: {wide}")
    finally:
        context.close()
    assert not problems + log.errors, "\n".join(problems + log.errors)
