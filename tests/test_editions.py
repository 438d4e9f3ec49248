"""The Chinese edition's translations (``book/editions.py``): complete, current, and faithful to the English."""

import gettext
import importlib.util
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("editions", ROOT / "book" / "editions.py")
editions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(editions)

ENGLISH = (
    "The gap is {glue:text}`lb_gap:.2f` nats ({numref}`fig-lb`), as in {cite:p}`kingma2013auto` and {eq}`eq-lb`:"
    r" $\log p(x) \ge \mathcal{L}_B$, see `vaelib.elbo` and [chapter 2](02_lower_bound.ipynb)."
)
CHINESE = (
    "差距为 {glue:text}`lb_gap:.2f` 奈特（{numref}`fig-lb`），与 {cite:p}`kingma2013auto` 和 {eq}`eq-lb` 一致："
    r"$\log p(x) \ge \mathcal{L}_B$，见 `vaelib.elbo` 和[第 2 章](02_lower_bound.ipynb)。"
)


def test_a_faithful_translation_has_no_problems():
    assert editions.translation_problems(ENGLISH, CHINESE) == []


@pytest.mark.parametrize(
    "part",
    [
        "{glue:text}`lb_gap:.2f`",
        "{numref}`fig-lb`",
        "{cite:p}`kingma2013auto`",
        "{eq}`eq-lb`",
        r"$\log p(x) \ge \mathcal{L}_B$",
        "`vaelib.elbo`",
        "(02_lower_bound.ipynb)",
    ],
)
def test_a_translation_that_drops_a_glued_number_reference_formula_code_or_link_is_refused(part):
    problems = editions.translation_problems(ENGLISH, CHINESE.replace(part, ""))
    assert len(problems) == 1 and problems[0].startswith("lost ") and part.strip("()") in problems[0], problems


def test_a_changed_formula_or_number_format_is_refused_but_translated_words_in_a_formula_are_not():
    changed = editions.translation_problems(ENGLISH, CHINESE.replace(r"\ge", r"\le").replace(":.2f", ":.1f"))
    assert [p.split()[0] for p in changed] == ["lost", "added"] and "lb_gap:.1f" in changed[1], changed
    english = r"drawn as $\mathrm{Bernoulli}(\text{grey level})$"
    assert editions.translation_problems(english, r"按 $\mathrm{Bernoulli}(\text{灰度})$ 抽取") == []
    outside = editions.translation_problems(english, r"按 $\mathrm{Bernoulli}(灰度)$ 抽取")
    assert any("Chinese in a formula outside" in p for p in outside), outside


def test_a_line_break_between_chinese_characters_is_refused():
    problems = editions.translation_problems(ENGLISH, CHINESE.replace("差距为", "差距\n为"))
    assert problems == ["a line break next to a Chinese character (it shows as a space)"]


def test_glued_numbers_in_a_translation_name_their_notebook():
    text = "见 {glue:text}`k:.1f`、{glue:text}`n`、{glue:text}`other.ipynb::j` 和 {glue}`m`"
    assert editions.glue_with_page(text, "book/02_lower_bound") == (
        "见 {glue:text}`02_lower_bound.ipynb::k:.1f`、{glue:text}`02_lower_bound.ipynb::n:s`、"
        "{glue:text}`other.ipynb::j` 和 {glue}`02_lower_bound.ipynb::m`"
    )  # myst-nb splits the format off at the last colon: a key without one gets its default, s


def _template(*messages: str) -> Catalog:
    catalog = Catalog()
    for message in messages:
        catalog.add(message)
    return catalog


def test_a_changed_paragraph_shows_in_english_until_it_is_translated_again(tmp_path):
    catalogs, page = tmp_path / "po", "book/chapter"
    before = _template("The bound is tight at the posterior.", "Unchanged.")
    editions.update({page: before}, catalogs)
    catalog = editions.read_catalog(page, catalogs)
    catalog["The bound is tight at the posterior."].string = "界在后验处是紧的。"
    catalog["Unchanged."].string = "不变。"
    editions.write_catalog(page, catalog, catalogs)
    assert editions.check({page: before}, [page], catalogs) == []

    changed = "The bound is tight at the exact posterior."
    after = _template(changed, "Unchanged.", "A new paragraph.")
    needs = editions.update({page: after}, catalogs)[page]
    assert needs == {"fuzzy": 1, "untranslated": 1}
    problems = editions.check({page: after}, [page], catalogs)
    assert len(problems) == 2 and "fuzzy" in problems[0] and "untranslated" in problems[1], problems
    # the fuzzy draft keeps the old translation for the translator, but is not compiled: the English shows
    assert editions.read_catalog(page, catalogs)[changed].string == "界在后验处是紧的。"
    editions.compile_catalogs([page], tmp_path / "mo", catalogs)
    with (tmp_path / "mo" / "zh_CN" / "LC_MESSAGES" / f"{page}.mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    assert compiled.gettext(changed) == changed
    assert compiled.gettext("The bound is tight at the posterior.") == "The bound is tight at the posterior."
    assert compiled.gettext("Unchanged.") == "不变。"


def test_a_paragraph_moved_to_another_page_keeps_its_translation(tmp_path):
    catalogs, first, second = tmp_path / "po", "book/chapter", "book/next_chapter"
    editions.update({first: _template("Stays.", "Moves on.")}, catalogs)
    catalog = editions.read_catalog(first, catalogs)
    catalog["Stays."].string, catalog["Moves on."].string = "留下。", "移走。"
    editions.write_catalog(first, catalog, catalogs)

    needs = editions.update({first: _template("Stays."), second: _template("Moves on.", "New.")}, catalogs)
    assert needs == {first: {}, second: {"untranslated": 1}}
    moved = editions.read_catalog(second, catalogs)["Moves on."]
    assert moved.string == "移走。" and not moved.fuzzy
    assert "Moves on." not in editions.read_catalog(first, catalogs)


def test_a_translation_of_a_paragraph_the_english_no_longer_has_is_reported_stale(tmp_path):
    catalogs, page = tmp_path / "po", "book/chapter"
    editions.update({page: _template("Kept.", "Removed later.")}, catalogs)
    catalog = editions.read_catalog(page, catalogs)
    catalog["Kept."].string, catalog["Removed later."].string = "保留。", "之后删除。"
    editions.write_catalog(page, catalog, catalogs)
    problems = editions.check({page: _template("Kept.")}, [page], catalogs)
    assert len(problems) == 1 and "stale" in problems[0], problems
    assert editions.check({page: _template("Kept.")}, ["book/missing"], catalogs) == [
        "book/missing: not a translatable page of the book"
    ]


def test_every_translated_page_is_translated_in_full_current_and_faithful():
    """The book's own catalogs against its current English text (Sphinx's gettext builder, nothing executed)."""
    pages = editions.translated_pages()
    templates = editions.extract()
    assert "book/api" not in templates and set(pages) <= set(templates), pages
    assert len(templates["book/intro"]) > 20  # the extraction found the preface's paragraphs
    problems = editions.check(templates, pages)
    assert not problems, "\n".join(problems[:30])


def test_a_running_time_sentence_is_translated_by_itself_and_stays_current(tmp_path):
    catalogs, page = tmp_path / "po", "book/chapter"
    line = editions._execute_notebooks().running_time_line(488.6, 42.0)
    needs = editions.update({page: _template(line)}, catalogs)[page]
    assert needs == {}
    assert editions.read_catalog(page, catalogs)[line].string == (
        "**运行时间**（双核 CPU）：完整模式约 8 分钟；快速模式（`VAELIB_QUICK=1`）不到一分钟。"
    )
    assert editions.check({page: _template(line)}, [page], catalogs) == []


# ---------------------------------------------------------------- wording: terms.yml and multiples

TERMS = [
    {"zh": "证据下界", "en": "evidence lower bound", "abbreviation": "ELBO", "page": "book/02_lower_bound",
     "alternatives": ["证据下限"], "first_use_english": True},
    {"zh": "后验坍缩", "en": "posterior collapse", "page": "book/03_kl_closed_form",
     "alternatives": ["后验崩塌"], "first_use_english": True},
    {"zh": "标准误差", "en": "standard error", "page": "book/09_log_likelihood",
     "alternatives": ["标准误"], "exceptions": ["标准误差"], "first_use_english": False},
]  # fmt: skip


def _catalog(*pairs: tuple[str, str]) -> Catalog:
    catalog = Catalog()
    for english, chinese in pairs:
        catalog.add(english, chinese)
    return catalog


@pytest.mark.parametrize(
    "wrong", ["大三倍", "少十倍", "多五十倍", "大 X 倍", "比它高 {glue:text}`r:.1f` 倍", "高出数倍"]
)
def test_a_comparative_multiple_is_refused(wrong):
    assert editions.wrong_multiples(f"这个方框{wrong}。") != []


@pytest.mark.parametrize(
    "right", ["是……的三倍", "是 ELBO 的 {glue:text}`r:.1f` 倍", "缩小到原来的十分之一", "至多 3 倍", "每个数量级四个点"]
)
def test_an_exact_multiple_is_accepted(right):
    assert editions.wrong_multiples(right) == []


def test_no_translation_writes_a_comparative_multiple():
    found = [
        (page, m.string)
        for page in editions.translated_pages()
        for m in editions.read_catalog(page)
        if m.id and m.string and editions.wrong_multiples(m.string)
    ]
    assert not found, found[:5]


def test_a_key_term_needs_its_english_at_its_first_mention_on_a_page_not_later_and_not_in_a_heading():
    heading = ("Posterior collapse", "后验坍缩")
    glossed = ("It collapses.", "这就是*后验坍缩*（posterior collapse）。")
    later = ("Again.", "后验坍缩再次出现，不必再附英文。")
    assert editions.first_use_problems("p", _catalog(heading, glossed, later), TERMS, {"Posterior collapse"}) == []
    # without the heading exemption the heading is the first mention
    problems = editions.first_use_problems("p", _catalog(heading, glossed, later), TERMS)
    assert len(problems) == 1 and "后验坍缩（posterior collapse）" in problems[0], problems
    # glossed only at the second mention: the first one is reported
    problems = editions.first_use_problems("p", _catalog(later, glossed), TERMS)
    assert len(problems) == 1 and "'Again.'" in problems[0], problems


def test_an_abbreviation_counts_as_a_mention_but_not_inside_code_or_a_formula():
    code = ("Uses `vaelib.ELBO()`.", "使用 `vaelib.ELBO()`。")
    bare = ("The ELBO.", "ELBO 的梯度。")
    glossed = ("The ELBO.", "证据下界（evidence lower bound, ELBO）的梯度。")
    assert editions.first_use_problems("p", _catalog(code, glossed), TERMS) == []
    problems = editions.first_use_problems("p", _catalog(code, bare), TERMS)
    assert len(problems) == 1 and "证据下界（evidence lower bound, ELBO）" in problems[0], problems


def test_an_alternative_rendering_is_refused_but_a_longer_word_listed_as_an_exception_is_not():
    catalog = _catalog(("a", "一个标准误差。"), ("b", "一个标准误。"), ("c", "后验崩塌了。"))
    problems = editions.alternative_problems("p", catalog, TERMS)
    assert [p.split(": ")[-1] for p in problems] == ["标准误 (write 标准误差)", "后验崩塌 (write 后验坍缩)"], problems


def test_every_translated_page_follows_terms_yml():
    """The book's catalogs: no comparative multiple, every key term glossed at its first mention, one rendering."""
    problems = editions.style_problems(editions.translated_pages())
    assert not problems, "\n".join(problems[:30])


def test_terms_yml_is_well_formed_and_its_problems_are_named():
    data = editions.load_terms()
    assert len(data["terms"]) > 20 and data["study_note"]
    assert all(isinstance(t.get("symbol", ""), str) for t in data["terms"])
    bad = {"terms": [{"zh": "下界", "en": "bound", "page": "book/missing", "symbol": 3, "first_use_english": "yes"}]}
    problems = editions.terms_problems(bad)
    assert any("'book/missing' is not a page" in p for p in problems), problems
    assert any("'symbol' must be a plain string" in p for p in problems), problems
    assert any("'first_use_english' must be true or false" in p for p in problems), problems
    assert editions.terms_problems([]) == ["terms.yml must be a mapping with a list under 'terms'"]


def test_the_glossary_links_every_term_to_its_page_and_joins_only_the_chinese_appendix():
    data = editions.load_terms()
    page = editions.glossary_markdown(data)
    assert page.startswith("# 术语表\n")
    rows = [line[len("* - ") :] for line in page.splitlines() if line.startswith("* - ")]
    shown = [t for t in data["terms"] if t.get("glossary", True)]
    assert rows[1 : len(shown) + 1] == [
        t["zh"] for t in sorted(shown, key=lambda t: editions.toc_pages().index(t["page"]))
    ]
    assert "幅" not in rows  # a rendering rule, not a term a reader looks up
    assert rows[1] in {t["zh"] for t in data["terms"] if t["page"] == "book/intro"}  # in reading order: preface first
    assert "  - [第 2 章](02_lower_bound.ipynb)" in page and "  - $\\mathcal{L}_B$" in page
    assert "## 学习笔记的记号与本书的记号" in page
    appendix = editions.chinese_toc()["parts"][-1]["chapters"]
    files = [c["file"] for c in appendix]
    assert files.index(editions.GLOSSARY) == files.index("book/api") - 1
    english = editions.yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert editions.GLOSSARY not in str(english)


def test_a_long_previous_english_survives_reading_and_writing_and_leaves_no_comments(tmp_path):
    long = "The bound is tight at the posterior, and this paragraph is long enough to take two lines of a file."
    catalog = Catalog(locale=editions.LOCALE)
    catalog.add(long + " New.", string="界是紧的。", flags={"fuzzy"}, previous_id=long)
    for _ in range(3):  # update and translation scripts read and write a catalog many times
        editions.write_catalog("page", catalog, tmp_path)
        catalog = editions.read_catalog("page", tmp_path)
    message = catalog[long + " New."]
    assert message.previous_id == [long] and message.user_comments == [] and "fuzzy" in message.flags
    message.flags.discard("fuzzy")  # translated again
    editions.write_catalog("page", catalog, tmp_path)
    assert "#" not in editions.catalog_path("page", tmp_path).read_text()


def test_no_page_catalog_holds_comments():
    for path in sorted((editions.CATALOGS / "book").glob("*.po")):
        comments = [line for line in path.read_text().splitlines() if line.startswith("#")]
        assert not comments, f"{path}: {comments[:3]}"


def test_the_editions_build_side_by_side_and_a_failure_is_named(tmp_path, capsys):
    # each command waits for the other's file: they can only both finish if they run at the same time
    wait_for = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); t = time.time() + 60\n"
    wait_for += "while not pathlib.Path(sys.argv[2]).exists() and time.time() < t: time.sleep(0.01)\n"
    wait_for += "print('saw', sys.argv[2]); sys.exit(pathlib.Path(sys.argv[1]).name == 'b')"
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    commands = {"First": [sys.executable, "-c", wait_for, a, b], "Second": [sys.executable, "-c", wait_for, b, a]}
    assert editions.run_at_once(commands, tmp_path) == ["Second"]
    printed = capsys.readouterr().out
    assert printed.index("First edition (exit code 0)") < printed.index("Second edition (exit code 1)")
    assert f"saw {b}" in printed and f"saw {a}" in printed
