"""The book in English and in Chinese (中文): build both editions, update and check the translations.

    python book/editions.py build [jupyter-book options]   # both editions into _build/html (Chinese: zh_CN/)
    python book/editions.py update                          # the translation files, after the English changed
    python book/editions.py check                           # what is untranslated, stale, damaged or off-style

The Chinese edition is made with Sphinx's gettext machinery from the same pages and the same executed
notebooks. Every paragraph, heading, list item, caption and table cell of the English text is a
*message*; ``locales/zh_CN/LC_MESSAGES/book/<page>.po`` holds each page's messages with their
translations. A message's key is its English text, so when a paragraph of the English text changes,
its old translation no longer applies: the Chinese page shows the English paragraph until the
paragraph is translated again, never a translation of what the paragraph used to say. ``update``
marks such a translation *fuzzy* (kept for the translator, not used) and adds new paragraphs
untranslated; ``check`` lists what is missing, fuzzy or stale, and every translation that lost a glued
number, a citation, a cross-reference, a formula, a piece of code or a link of its English text, and
every departure from ``locales/zh_CN/terms.yml``: one rendering per term, a key term's English in
parentheses at its first mention on a page, multiples written as exact multiples ("是……的 N 倍").
The Chinese edition has one page more, the glossary 术语表, generated from ``terms.yml`` when it builds.

Display equations are not messages (``book/_ext/editions.py``): they are the same in both languages.
The API page stays in English. Figures keep their English labels: both editions show the same
executed outputs.

``build`` runs ``jupyter-book build .`` with the options given (``-n -W --keep-going`` in CI) and, at
the same time in a second process, builds the Chinese edition from a configuration generated from
``_config.yml`` (``--config`` replaces the configuration, so it must be complete) with ``language: zh_CN``.
Its notebooks come from the English build's cache, so nothing is executed twice. The translations are
compiled for the build with one change: a glued number ``{glue:text}`key``` in a translation becomes
``{glue:text}`page.ipynb::key```, because Sphinx parses each translated message as a document of its own,
which has no glue data.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, unescape, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = "zh_CN"
CATALOGS = ROOT / "locales" / LOCALE / "LC_MESSAGES"  # book/<page>.po, as Sphinx's gettext_compact = False
EDITION = ROOT / "locales" / LOCALE / "edition.yml"  # the Chinese edition's title and link texts
BUILD = ROOT / "_build"
ENGLISH_ONLY = {"book/api"}  # pages that stay in English
TERMS = ROOT / "locales" / LOCALE / "terms.yml"  # the Chinese edition's terms: one rendering each, and the glossary
GLOSSARY = "book/glossary"  # the glossary page 术语表, generated from TERMS for the Chinese edition only

GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")
ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
MATH = re.compile(r"(?<![\\$])\$(?!\$)((?:\\.|[^$\\])+)\$")
CODE = re.compile(r"`[^`]+`")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
CJK = "\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
TEXT_IN_MATH = re.compile(r"\\text\{[^{}]*\}")
TEXT_PLACEHOLDER = r"\\text{…}"  # a formula's words, which a translation may translate (a sub() template)


# ---------------------------------------------------------------- configurations


def _book_config() -> dict:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config.setdefault("sphinx", {})
    sphinx["local_extensions"] = {name: str(ROOT / path) for name, path in sphinx.get("local_extensions", {}).items()}
    config["bibtex_bibfiles"] = [str(ROOT / path) for path in config.get("bibtex_bibfiles", [])]
    return config


def gettext_config() -> dict:
    """``_config.yml`` for extracting the messages: one catalog per page, nothing executed."""
    config = _book_config()
    config["execute"] = {**config.get("execute", {}), "execute_notebooks": "off"}
    # only the extension that decides what a message is; the others shape the HTML (and need the book's extras)
    local = config["sphinx"]["local_extensions"]
    config["sphinx"]["local_extensions"] = {"editions": local["editions"]}
    config["sphinx"].setdefault("config", {}).update(gettext_compact=False, gettext_location=False, gettext_uuid=False)
    return config


def chinese_config(locale_dirs: Path) -> dict:
    """``_config.yml`` for the Chinese edition: its language, title, author and catalogs (the pages' and the
    themes' words), its extensions (``book/_ext/chinese_edition.py``, ``chinese_citations.py``), the English
    build's cache."""
    edition = yaml.safe_load(EDITION.read_text())
    config = _book_config()
    config["title"] = edition["title"]
    config["author"] = edition["author"]
    config["execute"] = {**config.get("execute", {}), "cache": str(BUILD / ".jupyter_cache")}
    # the theme's words, the launch buttons' note and the served font; citations written the Chinese way
    extensions = ROOT / "book" / "_ext"
    config["sphinx"]["local_extensions"].update(chinese_edition=str(extensions), chinese_citations=str(extensions))
    config["sphinx"].setdefault("config", {}).update(
        language=LOCALE,
        bibtex_reference_style="author_year_zh",
        edition_notebook_note=edition["notebook_note"],
        locale_dirs=[str(locale_dirs)],
        gettext_compact=False,
        edition_switch={"root": "../", "label": edition["english_link"], "lang": "en"},
        nb_code_prompt_show=edition["code_prompt_show"],  # the buttons of hidden code cells
        nb_code_prompt_hide=edition["code_prompt_hide"],
    )
    return config


# ---------------------------------------------------------------- messages


def _jupyter_book() -> str:
    return str(Path(sys.executable).with_name("jupyter-book"))


def notebook_captions(page: str) -> list[str]:
    """The figure captions of a notebook page, as messages: they live in code cells' metadata, so Sphinx
    sees them only in executed notebooks (``mystnb.figure.caption``)."""
    path = ROOT / f"{page}.ipynb"
    if not path.exists():
        return []
    cells = json.loads(path.read_text())["cells"]
    captions = (c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption") for c in cells)
    return [" ".join(c.split()) for c in captions if c]


def extract() -> dict[str, Catalog]:
    """Every page's messages (a template catalog per page, ``book/intro`` ...), from the English sources."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "_config.yml"
        config.write_text(yaml.safe_dump(gettext_config(), allow_unicode=True))
        command = [_jupyter_book(), "build", str(ROOT), "--config", str(config), "--path-output", tmp]
        command += ["--builder", "custom", "--custom-builder", "gettext"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"extracting the messages failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        templates = {}
        for pot in sorted((Path(tmp) / "_build" / "gettext").rglob("*.pot")):
            page = pot.relative_to(Path(tmp) / "_build" / "gettext").with_suffix("").as_posix()
            with pot.open("rb") as f:
                templates[page] = read_po(f)
    for page, template in templates.items():
        for caption in notebook_captions(page):
            if caption not in template:
                template.add(caption)
    return {page: t for page, t in templates.items() if page not in ENGLISH_ONLY}


def translated_pages() -> list[str]:
    """The pages the Chinese edition has translated (``translated`` in ``edition.yml``); the others show
    the English text until they are added there. A translated page is checked in full."""
    return list(yaml.safe_load(EDITION.read_text()).get("translated") or [])


def catalog_path(page: str, catalogs: Path = CATALOGS) -> Path:
    return catalogs / f"{page}.po"


def _previous_english(comments: list[str]) -> str | None:
    """A fuzzy message's previous English, from the ``#|`` lines babel read back as comments.

    babel writes a long previous ``msgid`` over several ``#|`` lines without quoting each, and reads such
    lines back as translator comments (``"| msgid ..."``, ``"| ..."``); joined, they are the quoted string.
    """
    lines = [c[1:].strip() for c in comments if c.startswith("|")]
    text = " ".join(lines).removeprefix("msgid").strip()
    return unescape(text) if len(text) >= 2 and text[0] == text[-1] == '"' else None


def read_catalog(page: str, catalogs: Path = CATALOGS) -> Catalog | None:
    path = catalog_path(page, catalogs)
    if not path.exists():
        return None
    with path.open("rb") as f:
        catalog = read_po(f, locale=LOCALE)
    for message in catalog:
        if message.id and message.user_comments:
            previous = _previous_english(message.user_comments)
            if previous and "fuzzy" in message.flags and not message.previous_id:
                message.previous_id = [previous]
            message.user_comments = []  # the catalogs hold no translator comments: these were #| lines
    return catalog


def write_catalog(page: str, catalog: Catalog, catalogs: Path = CATALOGS) -> None:
    path = catalog_path(page, catalogs)
    path.parent.mkdir(parents=True, exist_ok=True)
    for message in catalog:  # babel guesses Python format strings; these are prose, whatever their braces
        message.flags -= {"python-format", "python-brace-format"}
        if "fuzzy" not in message.flags:  # translated again: the previous English has served
            message.previous_id = []
    with path.open("wb") as f:
        write_po(f, catalog, width=0, omit_header=True, ignore_obsolete=True, include_previous=True)


@functools.cache
def _execute_notebooks():
    """``book/execute_notebooks.py``, the script beside this one, as a module."""
    spec = importlib.util.spec_from_file_location("execute_notebooks", Path(__file__).with_name("execute_notebooks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def running_time_translation(english: str) -> str | None:
    """The translation of a chapter's running-time sentence (``book/execute_notebooks.py`` writes it from the
    measured times, so it changes with every saved build): generated, never left stale. ``None`` for any
    other message."""
    match = _execute_notebooks().RUNNING_TIME.fullmatch(english)
    if match is None:
        return None
    full, quick = (
        "不到一分钟" if text == "under a minute" else f"约 {text.split()[1]} 分钟" for text in match.groups()
    )
    return f"**运行时间**（双核 CPU）：完整模式{full}；快速模式（`VAELIB_QUICK=1`）{quick}。"


def update(templates: dict[str, Catalog], catalogs: Path = CATALOGS) -> dict[str, collections.Counter]:
    """Bring every page's catalog up to the English text; returns counts of what each page needs.

    A new message is added untranslated. A message whose English changed is matched to its most similar
    old message, whose translation is kept but marked fuzzy: a translator's draft, never shown. A message
    that moved to another page (the same English) keeps its translation. Messages no longer in the
    English are dropped.
    """
    catalogs_before = {page: read_catalog(page, catalogs) for page in templates}
    translated = {  # every current translation, by its English, whichever page holds it
        m.id: m.string
        for catalog in catalogs_before.values()
        if catalog is not None
        for m in catalog
        if m.id and m.string and not m.fuzzy
    }
    needs = {}
    for page, template in templates.items():
        catalog = catalogs_before[page] or Catalog(locale=LOCALE)
        catalog.update(template, update_header_comment=False)
        for message in catalog:
            generated = running_time_translation(message.id)
            if generated is not None:
                message.string, message.flags = generated, message.flags - {"fuzzy"}
                message.previous_id = []
            elif message.id in translated and (message.fuzzy or not message.string):
                message.string, message.flags = translated[message.id], message.flags - {"fuzzy"}
                message.previous_id = []
        write_catalog(page, catalog, catalogs)
        needs[page] = collections.Counter(
            "fuzzy" if m.fuzzy else "untranslated" for m in catalog if m.id and (m.fuzzy or not m.string)
        )
    return needs


# ---------------------------------------------------------------- checks


def kept_tokens(text: str) -> collections.Counter:
    """What a translation must keep of its English message: roles (glued numbers, citations,
    cross-references), inline formulas, inline code and link targets, each as often as the English has it.
    Inside a formula only the words of ``\\text{}`` may be translated."""
    found = collections.Counter(ROLE.findall(text))
    rest = ROLE.sub(" ", text)
    found.update("$" + TEXT_IN_MATH.sub(TEXT_PLACEHOLDER, m) + "$" for m in MATH.findall(rest))
    rest = MATH.sub(" ", rest)
    found.update(CODE.findall(rest))
    found.update(f"]({m})" for m in LINK_TARGET.findall(rest))
    return found


def translation_problems(english: str, chinese: str) -> list[str]:
    """What is wrong with one translation (empty: nothing)."""
    problems = []
    want, have = kept_tokens(english), kept_tokens(chinese)
    if want != have:
        lost, added = want - have, have - want
        if lost:
            problems.append(f"lost {', '.join(sorted(lost))}")
        if added:
            problems.append(f"added {', '.join(sorted(added))}")
    if re.search(f"[{CJK}]\n|\n[{CJK}]", chinese):
        problems.append("a line break next to a Chinese character (it shows as a space)")
    for formula in MATH.findall(ROLE.sub(" ", chinese)):
        if re.search(f"[{CJK}]", TEXT_IN_MATH.sub("", formula)):
            problems.append(f"Chinese in a formula outside \\text{{}}: ${formula}$")
    return problems


def check(templates: dict[str, Catalog], pages: Iterable[str], catalogs: Path = CATALOGS) -> list[str]:
    """Every problem of the translations of ``pages``, one line each (empty: all is well)."""
    problems = []
    for page in pages:
        template = templates.get(page)
        if template is None:
            problems.append(f"{page}: not a translatable page of the book")
            continue
        catalog = read_catalog(page, catalogs)
        if catalog is None:
            problems.append(f"{page}: no translations ({catalog_path(page, catalogs)} is missing)")
            continue
        for message in template:
            if not message.id:
                continue
            translated = catalog.get(message.id)
            where = f"{page}: {message.id[:70]!r}"
            if translated is None or not translated.string:
                problems.append(f"{where}: untranslated")
            elif translated.fuzzy:
                problems.append(f"{where}: fuzzy (the English changed; translate it again)")
            else:
                problems += [f"{where}: {p}" for p in translation_problems(message.id, translated.string)]
        stale = [m.id for m in catalog if m.id and m.id not in template]
        problems += [f"{page}: {s[:70]!r}: stale (not in the English any more; run update)" for s in stale]
    return problems


# ---------------------------------------------------------------- terms and style

# "大三倍" reads as four times and "少十倍" is not said: a comparative before "N 倍" is wrong by Chinese
# convention. The book means exactly N times: "是……的 N 倍", "……的 1/N", "缩小到……的十分之一".
WRONG_MULTIPLE = re.compile(
    r"(?<![至最许差更])"
    r"(?:[大多少高低快慢长短宽窄小]出?|增加了?|增大了?|提高了?|降低了?|减少了?|减小了?|缩小了?|扩大了?|放大了?)\s*"
    r"(?:[一二两三四五六七八九十百千万几数]+|[\d.,]+|\{glue(?::\w+)?\}`[^`]*`|\$[^$]+\$|[A-Za-z]\w*)\s*倍"
)
TERM_FIELDS = {"zh", "en", "abbreviation", "symbol", "page", "alternatives", "exceptions"}
TERM_FIELDS |= {"first_use_english", "glossary"}


def wrong_multiples(text: str) -> list[str]:
    """The comparative multiples of ``text`` ("大三倍", "少十倍", "大 X 倍" ...): wrong by Chinese convention."""
    return [m.group(0) for m in WRONG_MULTIPLE.finditer(text)]


def _page_exists(page: str) -> bool:
    return any((ROOT / f"{page}{suffix}").exists() for suffix in (".ipynb", ".md"))


def terms_problems(data: object) -> list[str]:
    """What is wrong with the contents of ``terms.yml`` (empty: nothing)."""
    if not isinstance(data, dict) or not isinstance(data.get("terms"), list):
        return ["terms.yml must be a mapping with a list under 'terms'"]
    problems = []
    seen = set()
    for i, term in enumerate(data["terms"]):
        where = f"terms.yml: term {i + 1}"
        if not isinstance(term, dict):
            problems.append(f"{where}: not a mapping")
            continue
        where += f" ({term.get('zh')!r})"
        problems += [f"{where}: unknown field {k!r}" for k in sorted(set(term) - TERM_FIELDS)]
        for field in ("zh", "en", "page"):
            if not isinstance(term.get(field), str) or not term.get(field):
                problems.append(f"{where}: {field!r} must be a non-empty string")
        for field in ("abbreviation", "symbol"):
            if field in term and not isinstance(term[field], str):
                problems.append(f"{where}: {field!r} must be a plain string (quote it in YAML)")
        for field in ("alternatives", "exceptions"):
            value = term.get(field, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                problems.append(f"{where}: {field!r} must be a list of non-empty strings")
        if not isinstance(term.get("first_use_english"), bool):
            problems.append(f"{where}: 'first_use_english' must be true or false")
        if not isinstance(term.get("glossary", True), bool):
            problems.append(f"{where}: 'glossary' must be true or false (default true)")
        if isinstance(term.get("page"), str) and not _page_exists(term["page"]):
            problems.append(f"{where}: page {term['page']!r} is not a page of the book")
        if term.get("zh") in seen:
            problems.append(f"{where}: listed twice")
        seen.add(term.get("zh"))
    for i, row in enumerate(data.get("study_note") or []):
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("note", "book", "page")):
            problems.append(f"terms.yml: study_note row {i + 1}: needs the strings 'note', 'book' and 'page'")
        elif not _page_exists(row["page"]):
            problems.append(f"terms.yml: study_note row {i + 1}: page {row['page']!r} is not a page of the book")
    return problems


def load_terms(path: Path = TERMS) -> dict:
    """``terms.yml``, checked: ``{"terms": [...], "study_note": [...]}``."""
    data = yaml.safe_load(path.read_text())
    problems = terms_problems(data)
    if problems:
        raise ValueError(f"{path} is not a valid terms file; fix:\n" + "\n".join(problems))
    return data


def page_headings(page: str) -> set[str]:
    """The English headings of a page (markdown ``#`` lines; for the root page also the parts of ``_toc.yml``):
    a heading names a term, so the first-use rule does not apply to it."""
    path = ROOT / f"{page}.ipynb"
    if path.exists():
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    elif (ROOT / f"{page}.md").exists():
        text = (ROOT / f"{page}.md").read_text()
    else:
        return set()
    headings = {line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{1,6} ", line)}
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    if toc.get("root") == page:
        headings |= {part["caption"] for part in toc.get("parts", []) if "caption" in part}
    return headings


def _prose(text: str) -> str:
    """A translation without what is not Chinese prose: roles, formulas, inline code, link targets."""
    text = ROLE.sub(" ", text)
    text = MATH.sub(" ", text)
    text = CODE.sub(" ", text)
    return LINK_TARGET.sub("]", text)


def _gloss(term: dict) -> str:
    return term["en"] + (f", {term['abbreviation']}" if term.get("abbreviation") else "")


def _mentions(term: dict, prose: str) -> bool:
    if term["zh"] in prose:
        return True
    abbreviation = term.get("abbreviation")
    return bool(abbreviation) and re.search(rf"(?<![A-Za-z-]){re.escape(abbreviation)}(?![A-Za-z])", prose) is not None


def _glossed(term: dict, prose: str) -> bool:
    return re.search(re.escape(term["zh"]) + r"\*?（" + re.escape(_gloss(term)), prose) is not None


def first_use_problems(page: str, catalog: Catalog, terms: list[dict], headings: Iterable[str] = ()) -> list[str]:
    """Key terms (``first_use_english``) whose first mention on the page lacks the English.

    The first mention is the first message, in the catalog's order (the page's order), whose translation
    mentions the term's Chinese rendering or its English abbreviation outside formulas, code and roles;
    headings (``headings``: their English) do not count. That translation must write the rendering
    followed, after an optional closing ``*``, by ``（English`` — e.g. ``证据下界（evidence lower bound, ELBO）``.
    """
    headings = set(headings)
    problems = []
    for term in terms:
        if not term.get("first_use_english"):
            continue
        for message in catalog:
            if not message.id or not message.string or message.fuzzy or message.id in headings:
                continue
            prose = _prose(message.string)
            if _mentions(term, prose):
                if not _glossed(term, prose):
                    problems.append(
                        f"{page}: {message.id[:60]!r}: first mention of {term['zh']} needs "
                        f"{term['zh']}（{_gloss(term)}）"
                    )
                break
    return problems


def alternative_problems(page: str, catalog: Catalog, terms: list[dict]) -> list[str]:
    """Translations that use a rendering ``terms.yml`` lists as an alternative: one term, one rendering.
    A term's ``exceptions`` (longer words that contain an alternative and mean something else) are allowed."""
    problems = []
    for message in catalog:
        if not message.id or not message.string or message.fuzzy:
            continue
        for term in terms:
            prose = _prose(message.string)
            for exception in sorted(term.get("exceptions", []), key=len, reverse=True):
                prose = prose.replace(exception, " ")
            problems += [
                f"{page}: {message.id[:60]!r}: {alternative} (write {term['zh']})"
                for alternative in term.get("alternatives", [])
                if alternative in prose
            ]
    return problems


def style_problems(pages: Iterable[str], catalogs: Path = CATALOGS, terms_file: Path = TERMS) -> list[str]:
    """Every problem of wording in the translations of ``pages``: comparative multiples, key terms without
    their English at first use, alternative renderings (empty: all is well)."""
    terms = load_terms(terms_file)["terms"]
    problems = []
    for page in pages:
        catalog = read_catalog(page, catalogs)
        if catalog is None:
            continue
        for message in catalog:
            if message.id and message.string and not message.fuzzy:
                problems += [
                    f"{page}: {message.id[:60]!r}: {m!r}: write 是……的 N 倍 (exactly N times)"
                    for m in wrong_multiples(message.string)
                ]
        problems += first_use_problems(page, catalog, terms, page_headings(page))
        problems += alternative_problems(page, catalog, terms)
    return problems


# ---------------------------------------------------------------- the glossary (Chinese edition only)


def _page_link(page: str) -> str:
    name = Path(page).name
    number = re.match(r"(\d+)_", name)
    text = f"第 {int(number.group(1))} 章" if number else {"intro": "前言"}.get(name, "附录")
    target = f"{name}.ipynb" if (ROOT / f"{page}.ipynb").exists() else f"{name}.md"
    return f"[{text}]({target})"


def _list_table(header: list[str], rows: list[list[str]], widths: list[int]) -> list[str]:
    """A MyST ``list-table`` (its columns keep the widths given, where a pipe table squeezes short terms)."""
    lines = ["```{list-table}", ":header-rows: 1", f":widths: {' '.join(map(str, widths))}", ""]
    for row in [header, *rows]:
        lines += [f"* - {row[0]}", *(f"  - {cell}" for cell in row[1:])]
    return [*lines, "```"]


def glossary_markdown(data: dict) -> str:
    """The glossary page 术语表: every term of ``terms.yml`` in the book's order (by the page that defines it),
    and the study note's notation against the book's."""
    order = {page: n for n, page in enumerate(toc_pages())}
    terms = [t for t in data["terms"] if t.get("glossary", True)]
    rows = [
        [
            term["zh"],
            term["en"] + (f"（{term['abbreviation']}）" if term.get("abbreviation") else ""),
            f"${term['symbol']}$" if term.get("symbol") else "",
            _page_link(term["page"]),
            "、".join(term.get("alternatives", [])),
        ]
        for term in sorted(
            terms, key=lambda t: order.get(t["page"], len(order))
        )  # stable: terms.yml's order within a page
    ]
    lines = [
        "# 术语表",
        "",
        "本书中文版的每个术语只用一种译法。下表按给出定义的章节列出各术语的译法、英文原文、书中的符号，"
        "以及读者在别处可能见到的其他译法。关键术语在每一页第一次出现时，都在全角括号中附上英文。",
        "",
        *_list_table(["术语", "英文", "符号", "定义", "其他译法"], rows, [14, 28, 22, 10, 26]),
        "",
        "## 学习笔记的记号与本书的记号",
        "",
        "本书源于一份关于 AEVB 的中文学习笔记。熟悉那份笔记的读者请注意，下表把笔记的记号（以及其中的笔误）"
        "对应到本书的记号；本书的记号见[前言](intro.md)。",
        "",
        *_list_table(
            ["笔记中", "本书中", "见"],
            [[r["note"], r["book"], _page_link(r["page"])] for r in data.get("study_note", [])],
            [35, 53, 12],
        ),
    ]
    return "\n".join(lines) + "\n"


def toc_pages() -> list[str]:
    """The pages of ``_toc.yml`` in reading order (``book/intro`` first)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"], *(c["file"] for part in toc.get("parts", []) for c in part.get("chapters", []))]


def chinese_toc() -> dict:
    """``_toc.yml`` for the Chinese edition: the glossary joins the appendix, before the API page."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc.get("parts", []):
        files = [chapter.get("file") for chapter in part.get("chapters", [])]
        if "book/api" in files:
            part["chapters"].insert(files.index("book/api"), {"file": GLOSSARY})
            return toc
    raise RuntimeError("_toc.yml has no part with book/api: where should the glossary go? Add it to the appendix.")


# ---------------------------------------------------------------- build


def glue_with_page(text: str, page: str) -> str:
    """``{glue:text}`key``` as ``{glue:text}`page.ipynb::key:s```: a translated message has no glue data of its own.

    myst-nb reads ``path::key:format`` by splitting off the format at the last colon, so a key without a
    format gets the one it has by default, ``s``.
    """
    notebook = Path(page).name + ".ipynb"

    def qualify(match: re.Match) -> str:
        role, target = match.group(0).split("`", 1)[0], match.group(1)
        if "::" in target:
            return match.group(0)
        if role == "{glue:text}" and ":" not in target:
            target += ":s"
        return f"{role}`{notebook}::{target}`"

    return GLUE.sub(qualify, text)


def compile_catalogs(pages: Iterable[str], out: Path, catalogs: Path = CATALOGS) -> None:
    """The catalogs as Sphinx reads them, ``out/zh_CN/LC_MESSAGES/<page>.mo``: translated, not fuzzy, glue qualified."""
    for page in pages:
        catalog = read_catalog(page, catalogs)
        if catalog is None:
            continue
        for message in catalog:
            if message.id and message.string and (ROOT / f"{page}.ipynb").exists():
                message.string = glue_with_page(message.string, page)
        mo = out / LOCALE / "LC_MESSAGES" / f"{page}.mo"
        mo.parent.mkdir(parents=True, exist_ok=True)
        with mo.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)


@contextlib.contextmanager
def chinese_pages(out: Path) -> Iterator[Path]:
    """While a Chinese edition builds (HTML or PDF): its table of contents, written into ``out`` (the English
    one plus the glossary), and the glossary page, a source page only meanwhile. Yields the table's path."""
    out.mkdir(parents=True, exist_ok=True)
    toc = out / "_toc.yml"
    toc.write_text(yaml.safe_dump(chinese_toc(), allow_unicode=True, sort_keys=False))
    glossary = ROOT / f"{GLOSSARY}.md"
    glossary.write_text(glossary_markdown(load_terms()))
    try:
        yield toc
    finally:
        glossary.unlink()


def build(options: list[str]) -> None:
    """Both editions at once, one process each: the English into ``_build/html``, the Chinese into
    ``_build/zh_CN``, then copied to ``_build/html/zh_CN``. Each build's log is printed when it ends."""
    _execute_notebooks().exit_on_sigterm()  # a SIGTERM stops both builds
    pages = [p.relative_to(CATALOGS).with_suffix("").as_posix() for p in sorted(CATALOGS.rglob("*.po"))]
    locale_dirs = BUILD / "locales"
    shutil.rmtree(locale_dirs, ignore_errors=True)
    compile_catalogs(pages, locale_dirs)
    out = BUILD / LOCALE
    out.mkdir(parents=True, exist_ok=True)
    config = out / "_config.yml"
    config.write_text(yaml.safe_dump(chinese_config(locale_dirs), allow_unicode=True))
    with chinese_pages(out) as toc:  # the English build leaves the glossary out: only_build_toc_files
        # --all: Sphinx does not notice that a page's translations changed when its English did not
        chinese = [_jupyter_book(), "build", str(ROOT), "--config", str(config), "--toc", str(toc)]
        commands = {
            "English": [_jupyter_book(), "build", str(ROOT), *options],
            "Chinese": chinese + ["--path-output", str(out), "--all", *options],
        }
        failed = run_at_once(commands, out)
    if failed:
        sys.exit(f"the {' and the '.join(failed)} edition failed: see its log above")
    site = BUILD / "html" / LOCALE
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(out / "_build" / "html", site)
    print(f"English edition: {(BUILD / 'html').relative_to(ROOT)}/index.html")
    print(f"Chinese edition: {site.relative_to(ROOT)}/index.html")


def run_at_once(commands: dict[str, list[str]], logs: Path) -> list[str]:
    """Run the commands side by side, each writing to ``logs/<name>.log``; print each log in order as it
    ends; return the names of those that failed. Stopped (Ctrl-C, SIGTERM), it stops them all."""
    print(f"building {' and '.join(commands)} at once (logs: {logs}/*.log)", flush=True)
    running = {}
    try:
        for name, command in commands.items():
            log = (logs / f"{name}.log").open("w")
            running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
        failed = []
        for name, (process, log) in running.items():
            code = process.wait()
            log.close()
            print(f"----- {name} edition (exit code {code})", (logs / f"{name}.log").read_text(), sep="\n", flush=True)
            if code:
                failed.append(name)
        return failed
    finally:
        for process, log in running.values():
            if process.poll() is None:
                process.terminate()
                process.wait()
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "update", "check"])
    args, options = parser.parse_known_args()
    if args.command == "build":
        build(options)
    elif options:
        parser.error(f"unknown options for {args.command}: {' '.join(options)}")
    elif args.command == "update":
        for page, needs in update(extract()).items():
            print(f"{page}: {needs['untranslated']} untranslated, {needs['fuzzy']} fuzzy")
    else:
        templates, pages = extract(), translated_pages()
        problems = check(templates, pages) + style_problems(pages)
        print("\n".join(problems) or f"every message of {len(pages)} translated pages is translated and current")
        for page in sorted(set(templates) - set(pages)):
            print(f"not translated yet (shown in English): {page}")
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
