"""Repository habits: lint clean, pinned dependencies, no machine paths in notebooks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"(/root/|/home/\w+|/tmp/\w|/work/|/Users/\w+|[A-Z]:\\\\Users)")


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout[-4000:]


def test_lock_pins_every_dependency_exactly() -> None:
    lines = [line.strip() for line in (ROOT / "requirements.lock").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert all("==" in line for line in lines), [x for x in lines if "==" not in x]
    pins = dict(line.split("==", 1) for line in lines)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    for name in ("jupyter-book", "nbval", "pytest", "matplotlib", "ipywidgets", "tqdm", "ruff"):
        assert name in pins, name
    assert pins["jupyter-book"].startswith("1.")


def test_no_notebook_or_chapter_names_a_path_of_this_machine() -> None:
    files = [*ROOT.glob("exercises/**/*.ipynb"), *ROOT.glob("book/*.md"),
             *ROOT.glob("book/*.ipynb")]
    offenders = [str(p.relative_to(ROOT)) for p in files if MACHINE_PATH.search(p.read_text())]
    assert not offenders


def test_ci_calls_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert re.search(r"^make test$", ci, re.M)
