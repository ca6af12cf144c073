"""The book builds offline with -W, every cell runs, and the HTML holds no error output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def _toc_files(entries: list[dict]) -> list[str]:
    files: list[str] = []
    for entry in entries:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("chapters", "sections", "parts"):
            files += _toc_files(entry.get(key, []))
    return files


def test_toc_lists_only_pages_that_exist() -> None:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    pages = [toc["root"], *_toc_files(toc.get("parts", []) + toc.get("chapters", []))]
    for page in pages:
        matches = [p for p in BOOK.glob(f"{page}.*") if p.suffix in {".md", ".ipynb"}]
        assert matches, f"_toc.yml lists {page}, which does not exist"


def test_config_fails_the_build_on_a_failing_cell() -> None:
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "force"
    assert config["execute"]["allow_errors"] is False
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True


def test_colab_links_point_at_notebooks_that_exist() -> None:
    links = re.findall(r"colab\.research\.google\.com/github/[^/]+/[^/]+/blob/main/([^\s)]+)",
                       "\n".join(p.read_text() for p in BOOK.glob("*.md")))
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link


@pytest.fixture(scope="module")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("book")
    source = out / "book"
    shutil.copytree(BOOK, source, ignore=shutil.ignore_patterns("_build"))
    jb = Path(sys.executable).with_name("jupyter-book")
    # The quick profile gives the chapters tiny stand-in models trained in seconds, so that
    # every cell of every chapter runs here; the published book uses the full profile.
    env = {**os.environ, "FCN_COURSE_PROFILE": "quick", "FCN_COURSE_CACHE": str(out / "cache"),
           # A font cache of this environment's matplotlib, built before the build so that
           # no chapter reports building it (or misses fonts a stale shared cache lacks).
           "MPLCONFIGDIR": str(out / "matplotlib")}
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env,
                   capture_output=True, check=True)
    result = subprocess.run(
        [str(jb), "build", "-W", "--keep-going", str(source)],
        capture_output=True, text=True, check=False, cwd=ROOT, env=env,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return source / "_build" / "html"


@pytest.mark.slow
def test_book_builds_without_warnings_or_errors(built_book: Path) -> None:
    pages = list(built_book.glob("*.html"))
    assert (built_book / "intro.html").is_file() and (built_book / "references.html").is_file()
    for page in pages:
        html = page.read_text()
        assert "Traceback (most recent call last)" not in html, page.name
        assert 'class="output traceback' not in html, page.name


@pytest.mark.slow
def test_every_chapter_is_built_with_figures_drawn_as_images(built_book: Path) -> None:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    chapters = [p for p in _toc_files(toc.get("parts", [])) if p[:2].isdigit()]
    assert len(chapters) == 9
    for chapter in chapters:
        html = (built_book / f"{chapter}.html").read_text()
        assert html.count("<img") >= 3, f"{chapter}: fewer than three figures"
        # A figure that did not render shows up as its text repr instead of an image.
        assert "&lt;Figure size" not in html and "<Figure size" not in html, chapter
        assert 'class="output stderr' not in html, f"{chapter}: a cell wrote to stderr"


@pytest.mark.slow
def test_book_has_offline_search_and_executed_code(built_book: Path) -> None:
    assert (built_book / "search.html").is_file()
    assert "bilinear" in (built_book / "searchindex.js").read_text()
    assert "0.0625, 0.1875" in (built_book / "intro.html").read_text()
    html = (built_book / "references.html").read_text()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split()).lower()
    for title in ("fully convolutional networks for semantic segmentation", "u-net", "segnet",
                  "deeplab", "convolution arithmetic", "checkerboard", "pattern analysis"):
        assert title in text, title
