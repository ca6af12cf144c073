"""The exercise machinery: generator, nbval runs, and the plain-words check command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fcn_course import exercises
from fcn_course.exercises import ExerciseError, check_exercise, generate_student, strip_solution

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "exercises" / "solutions").glob("[0-9][0-9]_*.ipynb"))
# The generator and checker tests below use exercise 03 as their example.
EX03 = ROOT / "exercises" / "solutions" / "03_transposed_convolution.ipynb"


def _nbval(path: Path) -> subprocess.CompletedProcess[str]:
    sanitize = ROOT / "exercises" / "sanitize.cfg"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *exercises.nbval_args(sanitize), str(path)],
        cwd=path.parent, capture_output=True, text=True, check=False,
    )


def _set_solution(nb_path: Path, function: str, new_body: str) -> None:
    """Replace the code cell that defines ``function`` by ``new_body`` (a student's edit)."""
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and f"def {function}(" in cell.source:
            cell.source = new_body
            break
    else:
        raise AssertionError(f"no cell defines {function}")
    nbformat.write(nb, nb_path)


def test_there_are_exercises() -> None:
    assert SOLUTIONS, "exercises/solutions/ holds no NN_topic.ipynb"


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_notebook_passes_nbval(solution: Path) -> None:
    result = _nbval(solution)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_check_cells_are_marked_and_saved(solution: Path) -> None:
    nb = nbformat.read(solution, as_version=4)
    checks = [c for c in nb.cells if c.cell_type == "code" and exercises.CHECK_MARKER in c.source]
    assert checks, "a solution without check cells checks nothing"
    for cell in checks:
        assert cell.execution_count is not None, "unexecuted cells are never compared by nbval"
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert text.startswith("PASS "), f"check cell saved without its verdict: {text!r}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_committed_student_notebook_is_what_the_generator_writes(
    solution: Path, exercises_copy: Path
) -> None:
    committed = ROOT / "exercises" / solution.name
    result = generate_student(exercises_copy / "solutions" / solution.name)
    assert result.status == "unchanged", f"run `make generate`: {solution.name} is out of date"
    assert committed.read_text() == (exercises_copy / solution.name).read_text()


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_untouched_student_notebook_fails_at_every_check(solution: Path) -> None:
    report = check_exercise(ROOT / "exercises" / solution.name)
    assert not report.passed
    assert report.checks and not any(c.passed for c in report.checks)
    assert "not implemented yet" in report.checks[0].message
    assert _nbval(ROOT / "exercises" / solution.name).returncode != 0


# ---- the generator


def test_strip_solution_keeps_indent_and_hint() -> None:
    source = (
        "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    ### HINT: add one\n    return x + y\n"
        "    ### END SOLUTION\n"
    )
    assert strip_solution(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError('add one')"
    )


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n### END SOLUTION\n", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n", "inside another"),
    ],
)
def test_strip_solution_rejects_broken_markers(source: str, match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        strip_solution(source)


def test_generator_refuses_a_solution_without_markers(tmp_path: Path) -> None:
    (tmp_path / "solutions").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, tmp_path / "solutions" / "09_demo.ipynb")
    with pytest.raises(ExerciseError, match=r"no '### BEGIN SOLUTION'.*nothing written"):
        generate_student(tmp_path / "solutions" / "09_demo.ipynb")
    assert not (tmp_path / "09_demo.ipynb").exists()


def test_generator_strips_solutions_and_keeps_check_outputs(exercises_copy: Path) -> None:
    for solution in SOLUTIONS:
        student = nbformat.read(exercises_copy / solution.name, as_version=4)
        reference = nbformat.read(solution, as_version=4)
        assert len(student.cells) == len(reference.cells)
        for s_cell, r_cell in zip(student.cells, reference.cells, strict=True):
            assert s_cell.get("id") == r_cell.get("id")
            if exercises.BEGIN in r_cell.source:
                assert "BEGIN SOLUTION" not in s_cell.source
                assert "raise NotImplementedError" in s_cell.source
                assert s_cell.outputs == [] and s_cell.execution_count is None
            elif exercises.CHECK_MARKER in r_cell.source:
                assert s_cell.outputs == r_cell.outputs
                assert s_cell.execution_count == r_cell.execution_count
                expected = s_cell.metadata["fcn_course"]["expected_output"]
                assert expected.startswith("PASS ")


def test_generator_protects_an_edited_student_notebook(exercises_copy: Path) -> None:
    solution = exercises_copy / "solutions" / EX03.name
    student = exercises_copy / EX03.name
    _set_solution(student, "bilinear_kernel", "def bilinear_kernel(i, o, k):\n    return 42\n")
    edited = student.read_text()

    refused = generate_student(solution)
    assert refused.status == "refused" and "edited" in refused.message
    assert student.read_text() == edited

    forced = generate_student(solution, force=True)
    assert forced.status == "written" and forced.backup is not None
    assert forced.backup.read_text() == edited
    assert "return 42" not in student.read_text()
    assert generate_student(solution).status == "unchanged"


def test_generator_overwrites_a_student_notebook_that_was_only_run(exercises_copy: Path) -> None:
    solution = exercises_copy / "solutions" / EX03.name
    student = exercises_copy / EX03.name
    nb = nbformat.read(student, as_version=4)
    nb.cells[1].execution_count = 7  # outputs change when a student runs cells; sources do not
    nbformat.write(nb, student)
    assert generate_student(solution).status == "written"


# ---- the check command


@pytest.mark.slow
def test_check_reports_typical_wrong_answers_in_a_notebook(exercises_copy: Path) -> None:
    student = exercises_copy / "03_transposed_convolution.ipynb"
    _set_solution(
        student, "conv_transpose_output_size",
        "def conv_transpose_output_size(size, kernel_size, stride=1, padding=0):\n"
        "    return (size - 1) * stride + kernel_size\n",
    )
    _set_solution(
        student, "bilinear_kernel",
        "def bilinear_kernel(in_channels, out_channels, kernel_size):\n"
        "    f = (kernel_size + 1) // 2\n"
        "    c = f - 1\n"
        "    t = torch.arange(kernel_size, dtype=torch.float32)\n"
        "    tent = 1 - (t - c).abs() / f\n"
        "    w = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)\n"
        "    for i in range(min(in_channels, out_channels)):\n"
        "        w[i, i] = torch.outer(tent, tent)\n"
        "    return w\n",
    )
    _set_solution(
        student, "conv_transpose2d",
        "def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):\n"
        "    return F.conv_transpose2d(x, weight, None, stride, padding)\n",
    )
    report = check_exercise(student)
    assert not report.passed
    messages = {c.title: c.message for c in report.checks}
    assert "missing the -2p term" in messages[
        "check_conv_transpose_output_size(conv_transpose_output_size)"]
    assert "off by half a pixel" in messages["check_bilinear_kernel(bilinear_kernel)"]
    assert "bias is omitted" in messages["check_conv_transpose2d(conv_transpose2d)"]
    assert "missing the -2p term" in report.summary()
    assert "0 of 3 checks pass" in report.summary()


@pytest.mark.slow
def test_check_ignores_outputs_the_student_saved(exercises_copy: Path) -> None:
    """A right answer saved with an old error output passes; a wrong one with PASS fails."""
    student = exercises_copy / "03_transposed_convolution.ipynb"
    solution = nbformat.read(EX03, as_version=4)
    nb = nbformat.read(student, as_version=4)
    for s_cell, r_cell in zip(nb.cells, solution.cells, strict=True):
        if exercises.BEGIN in r_cell.source:
            s_cell.source = r_cell.source  # the right code ...
        if exercises.CHECK_MARKER in r_cell.source:  # ... saved after a failing run
            s_cell.outputs = [nbformat.v4.new_output(
                "error", ename="CheckFailure", evalue="not implemented", traceback=[])]
    nbformat.write(nb, student)
    assert check_exercise(student).passed
    assert _nbval(student).returncode != 0  # plain nbval trusts the saved outputs

    fresh = nbformat.read(exercises_copy / "solutions" / EX03.name, as_version=4)
    nbformat.write(fresh, student)  # wrong code below, saved PASS verdicts above
    _set_solution(student, "bilinear_kernel",
                  "def bilinear_kernel(in_channels, out_channels, kernel_size):\n"
                  "    return torch.ones(in_channels, out_channels, kernel_size, kernel_size)\n")
    report = check_exercise(student)
    assert not report.passed
    assert [c.passed for c in report.checks] == [True, False, True]


@pytest.mark.slow
def test_check_points_at_a_cell_with_a_syntax_error(exercises_copy: Path) -> None:
    student = exercises_copy / "03_transposed_convolution.ipynb"
    _set_solution(student, "conv_transpose_output_size",
                  "def conv_transpose_output_size(size, kernel_size, stride=1, padding=0):\n"
                  "    return (size - 1) * stride + kernel_size - 2 padding\n")
    report = check_exercise(student)
    summary = report.summary()
    broken = next(c for c in report.cells if not c.passed)
    assert not broken.is_check
    assert broken.title.startswith("def conv_transpose_output_size(")
    assert "SyntaxError" in broken.message and "2 padding" in broken.message
    assert f"code cell {broken.index} (def conv_transpose_output_size(" in summary


def test_unknown_exercise_lists_the_available_ones() -> None:
    with pytest.raises(ExerciseError,
                       match=r"got '99'; available exercises: 02 \(02_convolutionalize\), 03 \("):
        exercises.find_exercise("99", ROOT)


def test_check_command_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fcn_course", "check", "99"], cwd=ROOT,
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 2 and "available exercises: 02 (02_convolutionalize), 03" in run.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "fcn_course", "check"], cwd=ROOT,
        capture_output=True, text=True, check=False,
    )
    assert listing.returncode == 0 and "03  03_transposed_convolution" in listing.stdout


def test_notebooks_are_valid_json_with_nbformat_4() -> None:
    for path in (ROOT / "exercises").rglob("*.ipynb"):
        data = json.loads(path.read_text())
        assert data["nbformat"] == 4, path
