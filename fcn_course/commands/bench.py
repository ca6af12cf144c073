"""``fcn-course bench``: train and compare FCN-32s, -16s and -8s on the synthetic data."""

from __future__ import annotations

import argparse
import json
import sys

from fcn_course import zoo
from fcn_course.bench import BUILDERS, BenchConfig, format_table, parse_data_options, run_benchmark


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = BenchConfig()
    bench = subparsers.add_parser(
        "bench",
        help="benchmark FCN-32s/16s/8s: training time, throughput, mean IU, boundary accuracy",
        description="Pre-train the course classifier (reused from --out when present), train "
        "FCN-32s, -16s and -8s from it with one recipe, and report training time, images/s, "
        "held-out mean IU and boundary accuracy. Example: fcn-course bench --out runs/bench",
    )
    bench.add_argument("--out", default="runs/bench", help="folder for classifier.pt and "
                       "bench.json (default: %(default)s)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    bench.add_argument("--models", nargs="+", default=list(defaults.models),
                       choices=list(BUILDERS), help="models to train (default: the three "
                       "FCNs; unet, segnet and deeplab are chapter 8's)")
    for name in ("image_size", "train_images", "test_images", "epochs", "batch_size",
                 "classifier_images", "classifier_epochs", "seed"):
        bench.add_argument(f"--{name.replace('_', '-')}", type=int,
                           default=getattr(defaults, name),
                           help=f"(default: {getattr(defaults, name)})")
    bench.add_argument("--optimizer", choices=["sgd", "adam"], default=defaults.optimizer)
    bench.add_argument("--lr", type=float, default=defaults.lr,
                       help=f"(default: {defaults.lr})")
    bench.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                       help="a ShapesSegmentation keyword, e.g. thin_width=[6,10] (repeatable)")
    bench.add_argument("--retrain", action="store_true",
                       help="train every model again even if --out holds one trained with the "
                       "same settings")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.set_defaults(func=_bench)

    prepare = subparsers.add_parser(
        "prepare",
        help="train (or find) the models the book loads, before building it",
        description="Train the course classifier, FCN-32s, -16s and -8s, U-Net, SegNet and "
        "DeepLab by the benchmark's recipe into the cache folder the chapters load from "
        "($FCN_COURSE_CACHE, default "
        "~/.cache/fcn-course), skipping any already there. make book runs it first. "
        "$FCN_COURSE_PROFILE=quick makes tiny stand-ins in seconds (for tests).",
    )
    prepare.add_argument("--no-progress", action="store_true", help="no progress bars")
    prepare.set_defaults(func=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    try:
        report = zoo.prepare(progress=not args.no_progress)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(report))
    return 0


def _bench(args: argparse.Namespace) -> int:
    try:
        config = BenchConfig(
            image_size=args.image_size, train_images=args.train_images,
            test_images=args.test_images, epochs=args.epochs, batch_size=args.batch_size,
            optimizer=args.optimizer, lr=args.lr, classifier_images=args.classifier_images,
            classifier_epochs=args.classifier_epochs, models=tuple(args.models),
            seed=args.seed, data_options=parse_data_options(args.data_option),
        )
    except (TypeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log = (lambda _: None) if args.json else print
    report = run_benchmark(config, out_dir=args.out, device=args.device,
                           progress=not args.no_progress, log=log, retrain=args.retrain)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print()
        print(format_table(report))
        print(f"\nreport written to {args.out}/bench.json")
    return 0
