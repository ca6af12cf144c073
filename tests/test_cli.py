"""The command line: every sub-command has --help; the version answers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fcn_course import __version__
from fcn_course.cli import build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("name", _subcommands())
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: fcn-course {name}")


def test_module_and_version() -> None:
    run = subprocess.run([sys.executable, "-m", "fcn_course", "--version"], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0 and run.stdout.strip() == f"fcn-course {__version__}"
    assert {"check", "generate"} <= set(_subcommands())


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
