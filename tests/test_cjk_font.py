"""The Chinese edition's served font (``book/cjk_font.py``) has a glyph for every character the edition shows."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("cjk_font", ROOT / "book" / "cjk_font.py")
cjk_font = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cjk_font)


def test_the_served_font_has_every_character_the_chinese_edition_shows():
    pytest.importorskip("fontTools", reason="the test extra installs fontTools")
    pytest.importorskip("brotli", reason="the test extra installs brotli (WOFF2 fonts are brotli-compressed)")
    missing = cjk_font.missing_characters()
    assert not missing, (
        f"{cjk_font.FONT.relative_to(ROOT)} lacks {len(missing)} characters the Chinese edition shows: "
        f"{''.join(sorted(missing))}; run `{cjk_font.COMMAND}` (needs fonts-noto-cjk) and commit the font"
    )


def test_the_edition_characters_come_from_every_catalog_and_text_of_the_edition():
    sources = {p.relative_to(ROOT).as_posix() for p in cjk_font.source_files()}
    assert {"locales/zh_CN/edition.yml", "locales/zh_CN/LC_MESSAGES/sphinx.po"} <= sources
    assert "locales/zh_CN/LC_MESSAGES/book/02_lower_bound.po" in sources
    assert "book/_ext/chinese_citations.py" in sources
    chars = cjk_font.edition_characters()
    assert {"等", "人", "（", "，", "A", "~"} <= chars


def test_a_character_no_source_uses_is_not_asked_for(tmp_path):
    text = tmp_path / "terms.yml"
    text.write_text("ELBO: 证据下界\n", encoding="utf-8")
    assert {"证", "据", "下", "界"} <= cjk_font.edition_characters([text])
    assert "龘" not in cjk_font.edition_characters([text])
