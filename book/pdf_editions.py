"""The book as PDF, in English and in Chinese: ``_build/pdf/vae-book.pdf`` and ``_build/pdf/vae-book-zh_CN.pdf``.

    python book/pdf_editions.py                      # both editions
    python book/pdf_editions.py --edition zh_CN      # one of them: en or zh_CN

Both are made by Sphinx's LaTeX builder through ``jupyter-book build --builder latex`` (with
sphinx-jupyterbook-latex: the parts of ``_toc.yml`` become the book's parts, ``book/intro`` its front
matter) and typeset by XeLaTeX, from the executed notebooks of jupyter-book's cache
``_build/.jupyter_cache``: run ``book/execute_notebooks.py`` first, and nothing is executed here. The
Chinese edition is the configuration ``book/editions.py`` builds the Chinese HTML from (its catalogs,
``language: zh_CN``, the title of ``locales/zh_CN/edition.yml``), with xeCJK and a CJK font; the API page
stays in English, as in HTML.

The English text, formulas and code outputs hold characters such as −, ≤, ±, σ, θ, φ, ∇ and ε: the text is
set in the GNU FreeFont faces (Sphinx's default for XeLaTeX, which have them), formulas in Latin Modern Math,
Chinese in Noto Serif CJK SC (Noto Sans CJK SC and Noto Sans Mono CJK SC for headings and code). Each
edition's LaTeX log is kept beside its PDF (``_build/pdf/vae-book.log`` ...), and the build fails when the
log reports a "Missing character": a glyph that none of the fonts has.

The TeX distribution and the fonts come from Debian/Ubuntu packages (``APT_PACKAGES``): when something is
missing the script installs them with apt (as root, or through sudo), or else stops with the
``apt-get install`` line to run.

Two details of jupyter-book's LaTeX output are handled here:

- sphinx-jupyterbook-latex's document class loads the ``bbm`` package for shorthands (``\\RR``, ``\\NN``
  ...) the book never uses; Debian ships ``bbm`` only in the 1.4 GB ``texlive-fonts-extra``, so the build
  gives the class a two-line ``bbm.sty`` that defines ``\\mathbbm`` as ``\\mathbb``.
- The chapters' file names start with a digit (``book/01_autoencoders_to_vaes.ipynb``). jupyter-book issue
  #1318 reports a PDF build that could not find such a notebook's outputs, when the images were named after
  the notebook. myst-nb 1.x names every output image by a hash of its content instead, and the LaTeX labels
  of such pages are ``\\detokenize``d, so the names do no harm; :func:`typeset` checks that every image the
  LaTeX source includes is beside it, so that a figure cannot go missing from the PDF unnoticed.

The part of ``_toc.yml`` whose chapters are not numbered (the appendix) follows ``\\appendix`` in the PDF,
so its chapters are lettered (A, B, ...) and the numbered chapters keep the numbers they have in HTML.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
OUT = BUILD / "pdf"
NAME = "vae-book"  # the English PDF's name; the Chinese one is NAME-zh_CN
EDITIONS = ("en", "zh_CN")

# what the build needs, and the Debian/Ubuntu packages that hold it (installed without their recommends)
APT_PACKAGES = (
    "make",
    "latexmk",
    "texlive-xetex",
    "texlive-latex-recommended",
    "texlive-latex-extra",  # Sphinx's fncychap, tabulary, needspace ...; sphinx-jupyterbook-latex's pgfplots
    "texlive-fonts-recommended",
    "texlive-lang-chinese",  # xeCJK (texlive-lang-cjk) and the ctex hooks it loads
    "fonts-freefont-otf",  # FreeSerif, FreeSans, FreeMono
    "fonts-lmodern",  # Latin Modern Math, for unicode-math
    "fonts-noto-cjk",  # Noto Serif/Sans CJK SC
    "poppler-utils",  # pdfinfo: the page counts printed at the end
)
PROGRAMS = ("make", "latexmk", "xelatex", "kpsewhich", "fc-list", "pdfinfo")
TEX_FILES = ("ucharclasses.sty", "unicode-math.sty", "fncychap.sty", "pgfplots.sty", "changepage.sty")
FONTS = ("FreeSerif", "FreeSans", "FreeMono", "Latin Modern Math")
CJK_TEX_FILES = ("xeCJK.sty", "ctexhook.sty")  # the Chinese edition's, in addition
CJK_FONT_FAMILIES = ("Noto Serif CJK SC", "Noto Sans CJK SC", "Noto Sans Mono CJK SC")

# the Chinese edition's preamble: its fonts, and Chinese names where LaTeX writes "Contents", "Part", "Chapter"
# ("第 1 章") and "Appendix"; babel (English) sets those names at \begin{document}, hence \AtBeginDocument
CJK_PREAMBLE = r"""
\setCJKmainfont{Noto Serif CJK SC}[BoldFont = Noto Serif CJK SC Bold]
\setCJKsansfont{Noto Sans CJK SC}[BoldFont = Noto Sans CJK SC Bold]
\setCJKmonofont{Noto Sans Mono CJK SC}
\makeatletter
\def\@chappos{章}
\g@addto@macro\appendix{\gdef\@chappos{}}
\let\vaebook@chapternumber\CNoV
\renewcommand{\CNoV}[1]{\vaebook@chapternumber#1\ifx\@chappos\@empty\else\space\@chappos\fi}
\AtBeginDocument{%
  \renewcommand{\contentsname}{目录}\renewcommand{\partname}{}%
  \renewcommand{\chaptername}{第}\renewcommand{\appendixname}{附录}}
\makeatother
"""
BBM_STY = "\\ProvidesPackage{bbm}\n\\providecommand{\\mathbbm}[1]{\\mathbb{#1}}\n"

# as XeTeX writes it in a log whose lines are not wrapped (``max_print_line``: see ``typeset``)
MISSING_CHARACTER = re.compile(
    r"^Missing character: There is no (\S+) (?:\(U\+([0-9A-F]+)\) )?in font (.*?);?!?$", re.MULTILINE
)
INCLUDED_IMAGE = re.compile(r"\\sphinxincludegraphics(?:\[[^\]]*\])?\{\{([^}]+)\}(\.\w+)\}")


# ---------------------------------------------------------------- pure helpers


def missing_characters(log: str) -> dict[str, set[str]]:
    """The characters an XeLaTeX log reports missing (``Missing character: There is no σ (U+03C3) in font
    ...``), each with the fonts that lacked it: empty when every glyph was found."""
    missing: dict[str, set[str]] = {}
    for char, code, font in MISSING_CHARACTER.findall(log):
        missing.setdefault(f"{char} (U+{code or format(ord(char[0]), '04X')})", set()).add(font)
    return missing


def included_images(tex: str) -> list[str]:
    """The image files a Sphinx LaTeX source includes (``\\sphinxincludegraphics{{name}.png}``), in order."""
    return [name + ext for name, ext in INCLUDED_IMAGE.findall(tex)]


def mark_appendix(tex: str, parts: int, appendix: int) -> str:
    """``tex`` with ``\\appendix`` before its part number ``appendix`` (counted from 0): that part's chapters
    become lettered appendices. ``parts`` is how many parts the table of contents has; the source must have
    as many ``\\part{`` (their titles are translated in the Chinese edition, so they are counted, not read)."""
    starts = [m.start() for m in re.finditer(r"^\\part\{", tex, re.MULTILINE)]
    if len(starts) != parts or not 0 <= appendix < parts:
        raise ValueError(
            f"expected {parts} \\part{{...}} in the LaTeX source, one per part of _toc.yml, and the appendix's"
            f" index below that; found {len(starts)} parts for appendix index {appendix}"
        )
    at = starts[appendix]
    return tex[:at] + "\\appendix\n" + tex[at:]


def appendix_part(toc: dict) -> int | None:
    """The index of the last part of a jupyter-book ``_toc.yml`` if its chapters are not numbered, else None."""
    parts = toc.get("parts") or []
    if parts and not parts[-1].get("numbered", False):
        return len(parts) - 1
    return None


def pdf_name(edition: str) -> str:
    """The file name (without suffix) of an edition's PDF: ``vae-book`` or ``vae-book-zh_CN``."""
    if edition not in EDITIONS:
        raise ValueError(f"unknown edition {edition!r}: expected one of {', '.join(EDITIONS)}")
    return NAME if edition == "en" else f"{NAME}-{edition}"


def apt_command(packages: tuple[str, ...] = APT_PACKAGES, sudo: bool = False) -> list[str]:
    """The ``apt-get install`` command line that installs ``packages`` (without their recommends)."""
    return [*(["sudo"] if sudo else []), "apt-get", "install", "-y", "--no-install-recommends", *packages]


# ---------------------------------------------------------------- system packages


def missing_requirements(editions: tuple[str, ...] = EDITIONS) -> list[str]:
    """What building ``editions`` needs and this machine lacks: programs, TeX packages, fonts."""
    chinese = any(edition != "en" for edition in editions)
    tex_files = TEX_FILES + (CJK_TEX_FILES if chinese else ())
    fonts = FONTS + (CJK_FONT_FAMILIES if chinese else ())
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if shutil.which("kpsewhich"):
        missing += [f for f in tex_files if not subprocess.run(["kpsewhich", f], capture_output=True).stdout.strip()]
    if shutil.which("fc-list"):
        families = set(subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True).stdout.split("\n"))
        families = {name.strip() for line in families for name in line.split(",")}
        missing += [f for f in fonts if f not in families]
    return missing


def ensure_requirements(editions: tuple[str, ...] = EDITIONS) -> None:
    """Install ``APT_PACKAGES`` with apt when something ``editions`` need is missing, as root or with sudo;
    else stop and say how."""
    missing = missing_requirements(editions)
    if not missing:
        return
    root = os.geteuid() == 0
    sudo = not root and shutil.which("sudo") is not None and subprocess.run(["sudo", "-n", "true"]).returncode == 0
    if not (root or sudo) or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"the PDF build needs {', '.join(missing)}; install them with\n"
            f"    sudo apt-get update && {' '.join(apt_command(sudo=True))}\n"
            "(or your system's equivalent of these packages) and run again"
        )
    print(f"missing {', '.join(missing)}: installing {' '.join(APT_PACKAGES)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    start = time.monotonic()
    prefix = [] if root else ["sudo"]
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*apt_command(sudo=not root), "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    print(f"installed in {time.monotonic() - start:.0f} s", flush=True)
    still = missing_requirements(editions)
    if still:
        raise RuntimeError(f"still missing after installing {' '.join(APT_PACKAGES)}: {', '.join(still)}")


# ---------------------------------------------------------------- the build


@functools.cache
def _editions():
    """``book/editions.py``, the script beside this one, as a module."""
    spec = importlib.util.spec_from_file_location("editions", Path(__file__).with_name("editions.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jupyter_book() -> str:
    return str(Path(sys.executable).with_name("jupyter-book"))


def latex_source(edition: str) -> Path:
    """Write an edition's LaTeX source with jupyter-book; returns the directory that holds it."""
    command = [_jupyter_book(), "build", str(ROOT), "--builder", "latex"]
    if edition == "en":  # _config.yml as it is: jupyter-book's cache and build directory
        out = BUILD / "latex"
    else:
        editions = _editions()
        locale_dirs = OUT / "locales"
        shutil.rmtree(locale_dirs, ignore_errors=True)
        pages = [p.relative_to(editions.CATALOGS).with_suffix("").as_posix() for p in editions.CATALOGS.rglob("*.po")]
        editions.compile_catalogs(sorted(pages), locale_dirs)
        config = editions.chinese_config(locale_dirs)
        config.setdefault("latex", {}).setdefault("latex_documents", {})["targetname"] = f"{pdf_name(edition)}.tex"
        elements = config["sphinx"]["config"].setdefault("latex_elements", {})
        elements["preamble"] = elements.get("preamble", "") + CJK_PREAMBLE
        work = OUT / edition
        work.mkdir(parents=True, exist_ok=True)
        (work / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
        out = work / "_build" / "latex"
        shutil.rmtree(out, ignore_errors=True)
        with editions.chinese_pages(work) as toc:  # the glossary too, as in the HTML edition
            # --all: Sphinx does not notice that a page's translations changed when its English did not
            command += ["--config", str(work / "_config.yml"), "--toc", str(toc), "--path-output", str(work), "--all"]
            subprocess.run(command, check=True)
        return out
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(command, check=True)
    return out


def typeset(source: Path, name: str) -> Path:
    """Run XeLaTeX (through the Makefile Sphinx writes) on ``source/name.tex``; returns the PDF in ``OUT``."""
    tex_path = source / f"{name}.tex"
    tex = tex_path.read_text()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    appendix = appendix_part(toc)
    if appendix is not None:
        tex = mark_appendix(tex, len(toc["parts"]), appendix)
        tex_path.write_text(tex)
    (source / "bbm.sty").write_text(BBM_STY)
    absent = [image for image in included_images(tex) if not (source / image).exists()]
    if absent:  # jupyter-book issue #1318's symptom
        raise RuntimeError(f"{tex_path.relative_to(ROOT)} includes images that are not beside it: {', '.join(absent)}")
    OUT.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["make", "-C", str(source), "all-pdf", "LATEXMKOPTS=-interaction=nonstopmode -halt-on-error -silent"],
        capture_output=True,
        text=True,
        env={**os.environ, "max_print_line": "100000"},  # a log line per message: "Missing character" is found whole
    )
    log = source / f"{name}.log"
    if log.exists():
        shutil.copy(log, OUT / log.name)
    if done.returncode != 0:
        raise RuntimeError(
            f"XeLaTeX failed on {tex_path.relative_to(ROOT)}; its log: {(OUT / log.name).relative_to(ROOT)}\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    missing = missing_characters(log.read_text(errors="replace"))
    if missing:
        lines = "\n".join(f"    {char} in {', '.join(sorted(fonts))}" for char, fonts in sorted(missing.items()))
        raise RuntimeError(f"{name}.pdf lacks glyphs (see {(OUT / log.name).relative_to(ROOT)}):\n{lines}")
    pdf = OUT / f"{name}.pdf"
    shutil.copy(source / f"{name}.pdf", pdf)
    return pdf


def page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def build(edition: str) -> Path:
    """One edition's PDF, ``_build/pdf/<name>.pdf``, with its LaTeX log beside it."""
    start = time.monotonic()
    source = latex_source(edition)
    written = time.monotonic()
    pdf = typeset(source, pdf_name(edition))
    print(
        f"{pdf.relative_to(ROOT)}: {page_count(pdf)} pages, {pdf.stat().st_size / 1e6:.1f} MB"
        f" (LaTeX source {written - start:.0f} s, XeLaTeX {time.monotonic() - written:.0f} s)",
        flush=True,
    )
    return pdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edition", choices=EDITIONS, action="append", help="build only this edition (repeatable)")
    args = parser.parse_args()
    editions = tuple(args.edition or EDITIONS)
    ensure_requirements(editions)
    for edition in editions:
        build(edition)


if __name__ == "__main__":
    main()
