"""``fcn-course check`` and ``fcn-course generate``: the exercise commands."""

from __future__ import annotations

import argparse
import sys

from fcn_course import exercises


def register(subparsers: argparse._SubParsersAction) -> None:
    check = subparsers.add_parser(
        "check",
        help="check one exercise notebook against the reference and report in plain words",
        description="Run your exercise notebook with nbval and say which checks pass. "
        "Example: fcn-course check 03",
    )
    check.add_argument("exercise", nargs="?", help="exercise number, e.g. 03 (omit to list them)")
    check.add_argument("--root", help="the course repository (default: found from the cwd)")
    check.set_defaults(func=_check)

    generate = subparsers.add_parser(
        "generate",
        help="regenerate student notebooks from exercises/solutions/",
        description="Write exercises/NN_topic.ipynb from exercises/solutions/NN_topic.ipynb, "
        "replacing solution code by stubs. A student notebook edited since it was generated "
        "is left alone unless --force is given (then a backup is kept).",
    )
    generate.add_argument("exercise", nargs="*", help="exercise numbers (default: all)")
    generate.add_argument("--force", action="store_true", help="overwrite edited notebooks")
    generate.add_argument("--root", help="the course repository (default: found from the cwd)")
    generate.set_defaults(func=_generate)


def _list(root: str | None) -> str:
    found = exercises.list_exercises(root)
    return "\n".join(f"  {number}  {path.stem}" for number, path in found.items())


def _check(args: argparse.Namespace) -> int:
    try:
        if not args.exercise:
            print("Available exercises (check one with: fcn-course check NN):")
            print(_list(args.root))
            return 0
        path = exercises.find_exercise(args.exercise, args.root)
        print(f"Checking {path.name} ...", flush=True)
        report = exercises.check_exercise(path, root=args.root)
    except exercises.ExerciseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.passed else 1


def _generate(args: argparse.Namespace) -> int:
    try:
        available = exercises.list_exercises(args.root)
        numbers = [exercises.find_exercise(n, args.root).name[:2] for n in args.exercise]
        chosen = [available[n] for n in numbers] if numbers else list(available.values())
        results = [exercises.generate_student(path, force=args.force) for path in chosen]
    except exercises.ExerciseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for result in results:
        line = f"{result.status:9s} {result.path.name}"
        if result.backup is not None:
            line += f" (backup: {result.backup.name})"
        if result.message:
            line += f": {result.message}"
        print(line)
    return 1 if any(r.status == "refused" for r in results) else 0
