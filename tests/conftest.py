"""Shared fixtures: the repository root and a copy of the exercises folder to work in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def exercises_copy(tmp_path: Path) -> Path:
    """A scratch copy of exercises/ (solutions, student notebooks, sanitize file)."""
    target = tmp_path / "exercises"
    shutil.copytree(
        ROOT / "exercises", target, ignore=shutil.ignore_patterns(".*", "*.bak-*", "__pycache__")
    )
    return target
