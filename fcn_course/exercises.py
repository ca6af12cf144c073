"""Exercise notebooks: generate student versions from solutions, and check a student's work.

The solution notebook ``exercises/solutions/NN_topic.ipynb`` is the source of truth. Code
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is the answer; :func:`generate_student`
replaces it with a stub that raises ``NotImplementedError`` (with the hint written on a
``### HINT:`` line inside the block, if any) and writes ``exercises/NN_topic.ipynb``.

Check cells contain ``# NBVAL_CHECK_OUTPUT`` and call a checker of :mod:`fcn_course.checks`.
The student notebook keeps their verdict output and execution count, so plain
``pytest --nbval-lax`` compares them, and stores the verdict in the cell's metadata, so that
:func:`check_exercise` can restore it: a student who saved a run with a wrong (or right)
answer still gets the verdict of the code as it is now.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN",
    "CHECK_MARKER",
    "END",
    "CellResult",
    "CheckReport",
    "ExerciseError",
    "GenerateResult",
    "check_exercise",
    "find_exercise",
    "generate_all",
    "generate_student",
    "list_exercises",
    "nbval_args",
    "strip_solution",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "### HINT:"
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
METADATA_KEY = "fcn_course"
_NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")


class ExerciseError(ValueError):
    """An exercise file is missing, malformed, or would be overwritten."""


# ----------------------------------------------------------------------------- locating


def exercises_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The ``exercises/`` folder: under ``root`` if given, else the one found from the cwd up."""
    if root is not None:
        path = Path(root)
        return path if path.name == "exercises" else path / "exercises"
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "exercises" / "solutions").is_dir():
            return folder / "exercises"
        if folder.name == "exercises" and (folder / "solutions").is_dir():
            return folder
    raise ExerciseError(
        f"no exercises/ folder with a solutions/ subfolder found in {here.name}/ or above it; "
        "run the command from the course repository or pass --root"
    )


def list_exercises(root: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Map exercise number (``"03"``) to its solution notebook."""
    solutions = exercises_dir(root) / "solutions"
    found: dict[str, Path] = {}
    for path in sorted(solutions.glob("*.ipynb")):
        match = _NAME.match(path.name)
        if match:
            found[match.group(1)] = path
    return found


def find_exercise(number: str | int, root: str | os.PathLike[str] | None = None) -> Path:
    """The student notebook of exercise ``number`` (``3``, ``"03"`` or ``"03_topic"``)."""
    available = list_exercises(root)
    key = str(number).strip()
    key = key.split("_", 1)[0].removesuffix(".ipynb")
    if key.isdigit():
        key = f"{int(key):02d}"
    if key not in available:
        listed = ", ".join(f"{n} ({p.stem})" for n, p in available.items()) or "none"
        raise ExerciseError(
            f"argument 'exercise' expected the number of an exercise, got {number!r}; "
            f"available exercises: {listed}"
        )
    return available[key].parent.parent / available[key].name


# ----------------------------------------------------------------------------- generating


def strip_solution(source: str, *, where: str = "cell") -> str:
    """Replace every ``BEGIN``/``END SOLUTION`` block of ``source`` by a stub that raises."""
    out: list[str] = []
    inside = False
    indent = ""
    hint = ""
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ExerciseError(f"{where}, line {number}: {BEGIN} inside another block")
            inside, indent, hint = True, line[: len(line) - len(line.lstrip())], ""
            continue
        if stripped == END:
            if not inside:
                raise ExerciseError(f"{where}, line {number}: {END} without {BEGIN}")
            message = hint or "write your solution here"
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError({message!r})")
            inside = False
            continue
        if inside:
            if stripped.startswith(HINT):
                hint = stripped[len(HINT):].strip()
            continue
        out.append(line)
    if inside:
        raise ExerciseError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out)


def _source_digest(nb: nbformat.NotebookNode) -> str:
    """A digest of the cells' types and sources: what a student changes by editing."""
    parts = [[cell.cell_type, cell.source] for cell in nb.cells]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _is_check_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and CHECK_MARKER in cell.source


def _build_student(solution: nbformat.NotebookNode, solution_name: str) -> nbformat.NotebookNode:
    student = copy.deepcopy(solution)
    markers = 0
    for index, cell in enumerate(student.cells):
        if BEGIN not in cell.source:
            if _is_check_cell(cell):
                text = "".join(
                    o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream"
                )
                if cell.get("execution_count") is None or not text:
                    raise ExerciseError(
                        f"{solution_name}, cell {index}: the check cell has no saved verdict; "
                        "execute the solution notebook and save it before generating"
                    )
                cell.metadata[METADATA_KEY] = {"expected_output": text}
            continue
        if cell.cell_type != "code":
            raise ExerciseError(f"{solution_name}, cell {index}: solution markers in a text cell")
        markers += 1
        cell.source = strip_solution(cell.source, where=f"{solution_name}, cell {index}")
        cell.outputs = []
        cell.execution_count = None
    if markers == 0:
        raise ExerciseError(
            f"{solution_name} has no '{BEGIN}' / '{END}' markers, so it has nothing to hide "
            "from students; mark the solution code and run the generator again (nothing written)"
        )
    student.metadata[METADATA_KEY] = {
        "generated_from": f"solutions/{solution_name}",
        "source_digest": _source_digest(student),
    }
    return student


@dataclasses.dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate_student` did: ``written``, ``unchanged`` or ``refused``."""

    status: str
    path: Path
    backup: Path | None = None
    message: str = ""


def _write_atomic(nb: nbformat.NotebookNode, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        nbformat.write(nb, handle)
    os.replace(tmp, path)


def generate_student(
    solution_path: str | os.PathLike[str],
    student_path: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
) -> GenerateResult:
    """Write the student notebook of one solution notebook.

    A student notebook whose cells were edited since it was generated is not overwritten
    unless ``force`` is true, and then a timestamped backup of it is kept beside it.
    """
    solution_path = Path(solution_path)
    if not solution_path.is_file():
        raise ExerciseError(f"argument 'solution_path': no file {solution_path}")
    if student_path is None:
        student_path = solution_path.parent.parent / solution_path.name
    student_path = Path(student_path)
    solution = nbformat.read(solution_path, as_version=4)
    student = _build_student(solution, solution_path.name)
    new_text = nbformat.writes(student) + "\n"

    if student_path.exists():
        if student_path.read_text(encoding="utf-8") == new_text:
            return GenerateResult("unchanged", student_path)
        current = nbformat.read(student_path, as_version=4)
        recorded = current.metadata.get(METADATA_KEY, {}).get("source_digest")
        edited = recorded != _source_digest(current)
        if edited and not force:
            return GenerateResult(
                "refused",
                student_path,
                message=f"{student_path.name} was edited since it was generated; not overwritten "
                "(use --force to overwrite it; a backup is kept)",
            )
        if edited:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            backup = student_path.with_name(f"{student_path.name}.bak-{stamp}")
            shutil.copy2(student_path, backup)
            _write_atomic(student, student_path)
            return GenerateResult("written", student_path, backup=backup)
    _write_atomic(student, student_path)
    return GenerateResult("written", student_path)


def generate_all(
    root: str | os.PathLike[str] | None = None, *, force: bool = False
) -> list[GenerateResult]:
    """Regenerate every student notebook from its solution."""
    return [generate_student(path, force=force) for path in list_exercises(root).values()]


# ----------------------------------------------------------------------------- checking


def nbval_args(sanitize_file: Path | None = None) -> list[str]:
    """The pytest arguments every nbval run of the course uses."""
    args = ["--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider"]
    if sanitize_file is not None and sanitize_file.is_file():
        args += ["--nbval-sanitize-with", str(sanitize_file)]
    return args


@dataclasses.dataclass(frozen=True)
class CellResult:
    """The outcome of one executed cell."""

    index: int
    passed: bool
    is_check: bool
    title: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """The outcome of checking one exercise notebook."""

    notebook: Path
    cells: list[CellResult]
    returncode: int

    @property
    def checks(self) -> list[CellResult]:
        return [c for c in self.cells if c.is_check]

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and all(c.passed for c in self.cells)

    def summary(self) -> str:
        """The plain-words report the ``check`` command prints."""
        lines = [f"Exercise {self.notebook.stem}"]
        for cell in self.checks:
            mark = "pass" if cell.passed else "FAIL"
            lines.append(f"  [{mark}] cell {cell.index}: {cell.title}")
        failures = [c for c in self.cells if not c.passed]
        first = failures[0] if failures else None
        if first is not None:
            kind = "check" if first.is_check else "code"
            lines.append("")
            lines.append(f"First problem, in {kind} cell {first.index} ({first.title}):")
            lines.extend("  " + line for line in first.message.strip().splitlines())
        ok = sum(c.passed for c in self.checks)
        lines.append("")
        if self.passed:
            lines.append(f"Result: all {ok} checks pass. Well done.")
        else:
            lines.append(
                f"Result: {ok} of {len(self.checks)} checks pass. Fix the first problem above, "
                "save, and run the check again."
            )
        return "\n".join(lines)


# Colour codes, raw or as junit XML writes them (the escape byte is not valid XML).
_ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*[A-Za-z]")


def _cell_title(cell: nbformat.NotebookNode) -> str:
    if _is_check_cell(cell):
        call = re.search(r"(check_\w+)\s*\(\s*(\w+)", cell.source)
        if call:
            return f"{call.group(1)}({call.group(2)})"
    for line in cell.source.splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            return text if len(text) <= 60 else text[:57] + "..."
    return "(empty cell)"


def _failure_message(text: str) -> str:
    """The useful part of nbval's failure text: the exception and its message."""
    text = _ANSI.sub("", text)
    lines = text.splitlines()
    for key in ("CheckFailure:", "SyntaxError:", "IndentationError:", "NotImplementedError:"):
        for number, line in enumerate(lines):
            if key in line:
                start = number
                if key in ("SyntaxError:", "IndentationError:"):
                    # show the offending line and caret printed just above the error
                    start = max(0, number - 3)
                tail: list[str] = []
                for x in lines[start:]:
                    if x.startswith("Notebook cell execution failed"):
                        break  # nbval repeats the cell and its traceback after this line
                    if x.strip() and not set(x.strip()) <= {"-"}:
                        tail.append(x)
                return "\n".join(tail[:20])
    for number, line in enumerate(lines):
        if re.match(r"^\w*(Error|Exception|Failure)\b.*:", line.strip()):
            return "\n".join(x for x in lines[number : number + 12] if x.strip())
    kept = [x for x in lines if x.strip()]
    return "\n".join(kept[-12:])


def check_exercise(
    exercise: str | int | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    timeout: float = 600,
) -> CheckReport:
    """Run nbval on a student's exercise notebook and report each cell in plain words.

    The saved verdicts of check cells are first restored from the cell metadata written by
    the generator, so outputs the student happened to save do not decide the result.
    """
    if isinstance(exercise, str | int) and not str(exercise).endswith(".ipynb"):
        path = find_exercise(exercise, root)
    else:
        path = Path(exercise)
    if not path.is_file():
        raise ExerciseError(
            f"argument 'exercise': no notebook {path}; regenerate student notebooks with "
            "`fcn-course generate`"
        )
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # a notebook that is not valid JSON
        raise ExerciseError(f"{path.name} is not a readable notebook ({err})") from err
    for cell in nb.cells:
        expected = cell.get("metadata", {}).get(METADATA_KEY, {}).get("expected_output")
        if _is_check_cell(cell) and expected is not None:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=expected)]
            if cell.get("execution_count") is None:
                cell.execution_count = 1
    copy_path = path.with_name(f".{path.stem}.check.ipynb")
    report_path = path.with_name(f".{path.stem}.check.xml")
    sanitize = exercises_dir(path.parent.parent if path.parent.name == "solutions"
                             else path.parent) / "sanitize.cfg"
    try:
        with open(copy_path, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        command = [
            sys.executable, "-m", "pytest", "-q", *nbval_args(sanitize),
            f"--junitxml={report_path}", "-o", "junit_family=xunit1",
            "--rootdir", str(path.parent), str(copy_path),
        ]
        proc = subprocess.run(
            command, cwd=path.parent, capture_output=True, text=True, timeout=timeout,
            check=False,
        )
        results = _parse_junit(report_path, nb) if report_path.exists() else []
    finally:
        copy_path.unlink(missing_ok=True)
        report_path.unlink(missing_ok=True)
    if not results:
        message = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        results = [CellResult(-1, False, False, "notebook", "\n".join(message))]
    return CheckReport(path, results, proc.returncode)


def _parse_junit(report: Path, nb: nbformat.NotebookNode) -> list[CellResult]:
    results: list[CellResult] = []
    code_cells = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    for case in ET.parse(report).getroot().iter("testcase"):
        match = re.search(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        # nbval numbers code cells only; report the index among all cells, as Jupyter shows.
        number = int(match.group(1))
        index = code_cells[number] if number < len(code_cells) else -1
        cell = nb.cells[index] if index >= 0 else nbformat.v4.new_code_cell("")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped") is not None
        message = ""
        if problem is not None:
            message = _failure_message((problem.get("message") or "") + "\n" + (problem.text or ""))
        results.append(
            CellResult(index, problem is None or skipped, _is_check_cell(cell), _cell_title(cell),
                       message)
        )
    return results
