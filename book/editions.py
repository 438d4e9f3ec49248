"""The book in English and in Chinese (中文): build both editions, update and check the translations.

    python book/editions.py build [jupyter-book options]   # both editions into _build/html (Chinese: zh_CN/)
    python book/editions.py update                          # the translation files, after the English changed
    python book/editions.py check                           # what is untranslated, stale or damaged

The Chinese edition is made with Sphinx's gettext machinery from the same pages and the same executed
notebooks. Every paragraph, heading, list item, caption and table cell of the English text is a
*message*; ``locales/zh_CN/LC_MESSAGES/book/<page>.po`` holds each page's messages with their
translations. A message's key is its English text, so when a paragraph of the English text changes,
its old translation no longer applies: the Chinese page shows the English paragraph until the
paragraph is translated again, never a translation of what the paragraph used to say. ``update``
marks such a translation *fuzzy* (kept for the translator, not used) and adds new paragraphs
untranslated; ``check`` lists what is missing, fuzzy or stale, and every translation that lost a glued
number, a citation, a cross-reference, a formula, a piece of code or a link of its English text.

Display equations are not messages (``book/_ext/editions.py``): they are the same in both languages.
The API page stays in English. Figures keep their English labels: both editions show the same
executed outputs.

``build`` runs ``jupyter-book build .`` with the options given (``-n -W --keep-going`` in CI), then
builds the Chinese edition from a configuration generated from ``_config.yml`` (``--config`` replaces
the configuration, so it must be complete) with ``language: zh_CN``. Its notebooks come from the
English build's cache, so nothing is executed twice. The translations are compiled for the build with
one change: a glued number ``{glue:text}`key``` in a translation becomes ``{glue:text}`page.ipynb::key```,
because Sphinx parses each translated message as a document of its own, which has no glue data.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import yaml
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = "zh_CN"
CATALOGS = ROOT / "locales" / LOCALE / "LC_MESSAGES"  # book/<page>.po, as Sphinx's gettext_compact = False
EDITION = ROOT / "locales" / LOCALE / "edition.yml"  # the Chinese edition's title and link texts
BUILD = ROOT / "_build"
ENGLISH_ONLY = {"book/api"}  # pages that stay in English

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


def read_catalog(page: str, catalogs: Path = CATALOGS) -> Catalog | None:
    path = catalog_path(page, catalogs)
    if not path.exists():
        return None
    with path.open("rb") as f:
        return read_po(f, locale=LOCALE)


def write_catalog(page: str, catalog: Catalog, catalogs: Path = CATALOGS) -> None:
    path = catalog_path(page, catalogs)
    path.parent.mkdir(parents=True, exist_ok=True)
    for message in catalog:  # babel guesses Python format strings; these are prose, whatever their braces
        message.flags -= {"python-format", "python-brace-format"}
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


def build(options: list[str]) -> None:
    """The English edition into ``_build/html``, then the Chinese one into ``_build/html/zh_CN``."""
    subprocess.run([_jupyter_book(), "build", str(ROOT), *options], check=True)
    pages = [p.relative_to(CATALOGS).with_suffix("").as_posix() for p in sorted(CATALOGS.rglob("*.po"))]
    locale_dirs = BUILD / "locales"
    shutil.rmtree(locale_dirs, ignore_errors=True)
    compile_catalogs(pages, locale_dirs)
    out = BUILD / LOCALE
    out.mkdir(parents=True, exist_ok=True)
    config = out / "_config.yml"
    config.write_text(yaml.safe_dump(chinese_config(locale_dirs), allow_unicode=True))
    # --all: Sphinx does not notice that a page's translations changed when its English did not
    command = [_jupyter_book(), "build", str(ROOT), "--config", str(config), "--path-output", str(out), "--all"]
    subprocess.run(command + options, check=True)
    site = BUILD / "html" / LOCALE
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(out / "_build" / "html", site)
    print(f"Chinese edition: {site.relative_to(ROOT)}/index.html")


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
        problems = check(templates, pages)
        print("\n".join(problems) or f"every message of {len(pages)} translated pages is translated and current")
        for page in sorted(set(templates) - set(pages)):
            print(f"not translated yet (shown in English): {page}")
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
