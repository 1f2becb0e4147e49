"""`ame` command line: the thin layer the Snakemake rules call, one subcommand per pipeline step.

Each step takes its resolved parameters as JSON (exactly the dict Snakemake tracks, so what reran
and what the job used cannot disagree), sets torch's thread count from --threads, and writes its
outputs atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _params(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"ame: --params is not valid JSON: {err}") from None


def _spec(text: str, seed: int | None = None):
    """The run specification a rule passed as JSON (with `seed` added, when given)."""
    from ame.spec.run import RunSpec

    data = _params(text)
    if seed is not None:
        data = {**data, "seed": seed}
    return RunSpec.from_dict(data, where="--spec")


def _setup(args) -> None:
    from ame.runtime import setup

    setup(args.threads)


def cmd_validate(args) -> None:
    from ame.spec import grid_specs, load_active, load_preset

    if args.preset:
        cfg, path = load_preset(args.preset), args.preset
    else:
        cfg, path = load_active()
    print(f"{path}: valid preset '{cfg['preset']}' ({len(grid_specs(cfg))} distillation runs)")


def cmd_datasets(args) -> None:
    from ame.data import DATASETS

    for name, info in sorted(DATASETS.items()):
        print(f"{name:14s} {info.kind:9s} aliases: {', '.join(info.aliases)}")


def cmd_config_docs(args) -> None:
    from ame.spec.preset import schema

    def walk(props: dict, prefix: str = ""):
        for key, sub in props.items():
            name = f"{prefix}{key}"
            if sub.get("type") == "object" and "properties" in sub:
                yield name, sub
                yield from walk(sub["properties"], name + ".")
            else:
                yield name, sub

    print("| key | default | description |\n|---|---|---|")
    for name, sub in walk(schema()["properties"]):
        default = json.dumps(sub["default"]) if "default" in sub and not isinstance(sub["default"], dict) else ""
        text = sub.get("description", "").replace("|", "\\|")  # a literal | would split the table cell
        print(f"| `{name}` | {default} | {text} |")


def cmd_code_files(args) -> None:
    from ame.fingerprint import files_of_steps, fingerprint

    for path in files_of_steps(args.steps):
        print(path)
    for step in args.steps:
        log.info(f"# {step}: fingerprint {fingerprint(step)}")


def cmd_prepare(args) -> None:
    from ame.data import prepare_dataset

    custom = _params(args.custom) if args.custom else None
    print(prepare_dataset(args.dataset, args.data_root, custom={args.dataset: custom} if custom else None))


def cmd_shots(args) -> None:
    from ame.data import write_shots

    shots = args.shots if args.shots == "full" else int(args.shots)
    write_shots(args.split, shots, args.seed, args.out)


def cmd_backbone(args) -> None:
    _setup(args)
    from ame.steps.backbone import make_backbone

    make_backbone(_params(args.params), [Path(p) for p in args.splits], Path(args.out_card),
                  Path(args.out_weights) if args.out_weights else None)


def cmd_teacher(args) -> None:
    _setup(args)
    from ame.steps.teacher import make_teacher

    make_teacher(_params(args.params), Path(args.backbone), Path(args.split), Path(args.shots) if args.shots else None,
                 Path(args.out_weights), Path(args.out_card), allow_unknown_keys=args.allow_unknown_keys)


def cmd_dump_checkpoint(args) -> None:
    from ame.models.promptkd import describe_checkpoint, read_checkpoint

    lines = describe_checkpoint(read_checkpoint(args.path))
    print("\n".join([f"{args.path}:", *lines]))


def cmd_teacher_check(args) -> None:
    _setup(args)
    from ame.steps.teacher_check import check_teacher

    check_teacher(_params(args.params), Path(args.teacher), Path(args.features), Path(args.split), Path(args.out))


def cmd_teacher_features(args) -> None:
    _setup(args)
    from ame.runtime import resolve_device
    from ame.steps.teacher_features import text_features

    text_features(Path(args.teacher), Path(args.split), Path(args.out), resolve_device(args.device))


def cmd_distill(args) -> None:
    _setup(args)
    from ame.steps.distill import RunInputs, distill_cell

    caches = args.teacher_cache or [None] * len(args.seeds)
    if not (len(args.seeds) == len(args.shots) == len(args.out_dirs) == len(args.scratch_dirs) == len(caches)):
        raise SystemExit("ame distill: give one --shots file, one --out-dirs folder, one --scratch-dirs folder and "
                         "(with a cache) one --teacher-cache file per seed")
    inputs = [RunInputs(Path(args.split), Path(shots), Path(args.student_backbone), Path(args.teacher),
                        Path(args.text_features), Path(cache) if cache else None)
              for shots, cache in zip(args.shots, caches)]
    distill_cell(_params(args.spec), args.seeds, inputs, [Path(d) for d in args.out_dirs],
                 [Path(d) for d in args.scratch_dirs], save_minutes=args.save_minutes,
                 collapse_percent=args.warn_collapse_percent, workers=args.workers,
                 decoded_cache_mb=args.decoded_cache_mb)


def cmd_teacher_cache(args) -> None:
    _setup(args)
    from ame.steps.teacher_cache import build

    summary = build(_params(args.params), args.seed, Path(args.split), Path(args.shots), Path(args.teacher),
                    Path(args.text_features), Path(args.out),
                    Path(args.student_backbone) if args.student_backbone else None, args.inference_batch, args.workers)
    log.info(f"[teacher-cache] {args.out}: {summary}")


def cmd_evaluate(args) -> None:
    from ame.steps import evaluation

    if args.student:
        result = evaluation.evaluate_student(args.student, args.split, args.classes, args.text_features,
                                             args.batch_size, args.device, args.out)
    elif args.backbone:
        if args.text_features:
            raise SystemExit("ame evaluate: --text-features is for --student and --teacher; a backbone is "
                             "scored zero-shot with its own text tower")
        result = evaluation.evaluate_backbone(args.backbone, args.split, args.classes, args.batch_size,
                                              args.device, args.out)
    else:
        if not args.text_features:
            raise SystemExit("ame evaluate: --teacher needs --text-features (its features of the split's "
                             "classes, results/<preset>/models/features/<task>/<dataset>.pt)")
        result = evaluation.evaluate_teacher(args.teacher, args.text_features, args.split, args.classes,
                                             args.batch_size, args.device, args.out)
    print(json.dumps(result, indent=1))


def cmd_predict(args) -> None:
    import csv
    import sys

    from ame.steps.evaluation import predict_folder

    rows = predict_folder(args.student, args.images, args.top_k, args.batch_size, args.device)
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if args.out:
            out.close()


def cmd_zeroshot(args) -> None:
    _setup(args)
    from ame.steps.zeroshot import zero_shot

    zero_shot(_spec(args.spec), Path(args.student_backbone), Path(args.split), Path(args.out_dir))


def cmd_report(args) -> None:
    from ame.report import build_report

    written = build_report(args.runs, args.tables_dir, args.figures_dir, args.preset,
                           selection=args.selection, tsne_dataset=args.tsne_dataset or None,
                           heatmap_datasets=args.heatmap_datasets or None, metrics_dir=args.metrics_dir,
                           readme=args.readme)
    if args.teacher_checks is not None:
        from ame.report.teacher_table import write_teacher_check

        tables = Path(args.tables_dir)
        write_teacher_check(args.teacher_checks, tables / "teacher_check.csv", tables / "teacher_check.md",
                            args.preset)
    print(json.dumps(written, indent=1, default=str))


def cmd_ablation_report(args) -> None:
    from ame.report.ablation import write_ablation

    print(write_ablation(args.runs, args.out_csv, args.out_md).to_string())


def build_parser() -> argparse.ArgumentParser:
    from ame import __version__

    parser = argparse.ArgumentParser(prog="ame", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ame {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".")
        p.set_defaults(func=func)
        p.add_argument("--threads", type=int, default=1, help="torch threads (Snakemake passes the rule's)")
        loud = p.add_mutually_exclusive_group()
        loud.add_argument("--quiet", dest="verbosity", action="store_const", const=-1, default=0,
                          help="log warnings and errors only")
        loud.add_argument("--verbose", dest="verbosity", action="store_const", const=1, help="log debug detail too")
        return p

    p = add("validate", cmd_validate, "validate a preset file (default: the active one, config/config.yaml)")
    p.add_argument("preset", nargs="?", default=None, help="preset file, e.g. config/paper.yaml")
    add("datasets", cmd_datasets, "list known datasets and aliases")
    add("config-docs", cmd_config_docs, "print every preset key with its default and help as Markdown")
    p = add("code-files", cmd_code_files, "list the source and data files pipeline steps run (DVC's code deps)")
    p.add_argument("steps", nargs="+", help="step names, e.g. distill report")
    p = add("prepare", cmd_prepare, "prepare a dataset into data/<dataset>/split.json")
    p.add_argument("--dataset", required=True, help="a registered dataset or alias (`ame datasets`), or a custom one")
    p.add_argument("--data-root", default="data", help="where prepared datasets live (default: data)")
    p.add_argument("--custom", default=None, help="a custom dataset's definition (JSON; its custom_datasets entry)")
    p = add("shots", cmd_shots, "sample K shots per class (Dassl-compatible)")
    p.add_argument("--split", required=True, help="the dataset's split.json")
    p.add_argument("--shots", required=True, help="K (shots per class) or 'full'")
    p.add_argument("--out", required=True, help="the shots file to write (JSON)")
    p.add_argument("--seed", type=int, required=True, help="the sampling seed (the run's seed)")
    p = add("backbone", cmd_backbone, "pre-train a CLIP backbone (weights: pretrain) or record where its weights are "
                                      "(openai, a local file): its card")
    p.add_argument("--params", required=True, help="the step's parameters (JSON: arch, weights, pre-training)")
    p.add_argument("--splits", nargs="*", default=[], help="split.json files whose TRAIN images pre-train it")
    p.add_argument("--out-weights", default=None, help="the pre-trained weights file (weights: pretrain only)")
    p.add_argument("--out-card", required=True, help="the backbone card to write (JSON: arch, weights, sha256)")
    p = add("teacher", cmd_teacher, "prompt-tune a teacher (source: train) or import PromptKD's (source: fetch)")
    p.add_argument("--params", required=True, help="the step's parameters (JSON: source, prompts, training)")
    p.add_argument("--backbone", required=True, help="the teacher backbone's card")
    p.add_argument("--split", required=True, help="the dataset's split.json")
    p.add_argument("--out-weights", required=True, help="the teacher's prompts / converted weights to write")
    p.add_argument("--out-card", required=True, help="the teacher card to write (JSON, with sha256)")
    p.add_argument("--shots", nargs="?", default=None, help="labeled shots file (source: train only)")
    p.add_argument("--allow-unknown-keys", action="store_true",
                   help="source: fetch — skip checkpoint tensors outside the PromptSRC mapping and keep the "
                        "backbone's weights for absent backbone tensors (inspect with `ame dump-checkpoint`)")
    p = add("dump-checkpoint", cmd_dump_checkpoint, "list a checkpoint's entries and tensors (shape, dtype, target)")
    p.add_argument("path", help="a checkpoint file (e.g. PromptKD's released teacher)")
    p = add("teacher-check", cmd_teacher_check, "score a loaded teacher on its dataset's test split")
    p.add_argument("--params", required=True, help="the step's parameters (JSON)")
    p.add_argument("--teacher", required=True, help="the teacher card")
    p.add_argument("--features", required=True, help="the teacher's stored text features")
    p.add_argument("--split", required=True, help="the dataset's split.json")
    p.add_argument("--out", required=True, help="the check to write (JSON: Base/New/HM or accuracy)")
    p = add("teacher-features", cmd_teacher_features, "compute a teacher's text features once")
    p.add_argument("--teacher", required=True, help="the teacher card")
    p.add_argument("--split", required=True, help="the dataset's split.json (its class names)")
    p.add_argument("--out", required=True, help="the text features to write (C x d, with class names)")
    p.add_argument("--device", default="auto", help="torch device (auto: CUDA when available)")
    p = add("distill", cmd_distill, "distill students for one grid cell, one run per seed")
    p.add_argument("--spec", required=True, help="the cell's run specification (JSON, without the seed)")
    p.add_argument("--split", required=True, help="the dataset's split.json")
    p.add_argument("--student-backbone", required=True, help="the student backbone's card")
    p.add_argument("--teacher", required=True, help="the teacher card")
    p.add_argument("--text-features", required=True, help="the teacher's text features (the student's classifier)")
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="one run per seed")
    p.add_argument("--shots", nargs="+", required=True, help="one shots file per seed")
    p.add_argument("--out-dirs", nargs="+", required=True, help="one run folder per seed")
    p.add_argument("--scratch-dirs", nargs="+", required=True, help="one resume-state folder per seed")
    p.add_argument("--save-minutes", type=float, default=15.0,
                   help="save resume state every N minutes of training (and at each epoch's end)")
    p.add_argument("--warn-collapse-percent", type=float, default=5.0,
                   help="warn when an epoch's mean H(M) is below this %% of its maximum log(C + B); 0: never")
    p.add_argument("--teacher-cache", nargs="*", default=[], help="one cache per seed (kd.teacher_cache)")
    p.add_argument("--workers", type=int, default=0,
                   help="data-loading processes decoding and augmenting training images (0: in the main process)")
    p.add_argument("--decoded-cache-mb", type=int, default=4096,
                   help="keep the training images decoded in memory when they fit in this many MB")
    p = add("teacher-cache", cmd_teacher_cache, "cache a teacher's logits on one cell's pre-drawn augmentations")
    p.add_argument("--params", required=True, help="the cell's cache parameters (JSON)")
    p.add_argument("--split", required=True, help="the dataset's split.json")
    p.add_argument("--shots", required=True, help="the seed's shots file")
    p.add_argument("--teacher", required=True, help="the teacher card")
    p.add_argument("--text-features", required=True, help="the teacher's text features")
    p.add_argument("--out", required=True, help="the cache file to write")
    p.add_argument("--seed", type=int, required=True, help="the seed whose augmentations are cached")
    p.add_argument("--student-backbone", help="the student backbone's card (cells with prompt-free students)")
    p.add_argument("--inference-batch", type=int, default=256, help="images per pass of the frozen towers")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes decoding and augmenting the crops")
    p = add("zeroshot", cmd_zeroshot, "score the student backbone zero-shot")
    p.add_argument("--spec", required=True, help="the zero-shot run's specification (JSON)")
    p.add_argument("--student-backbone", required=True, help="the student backbone's card")
    p.add_argument("--split", required=True, help="the dataset's split.json")
    p.add_argument("--out-dir", required=True, help="the run folder to write")
    p = add("evaluate", cmd_evaluate, "score a trained student, a backbone zero-shot or a loaded teacher on a "
            "prepared dataset's test split: top-1, top-5, mean per-class recall")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--student", help="a run folder (or its student.json)")
    model.add_argument("--backbone", help="a backbone card (results/<preset>/models/backbone/<role>.json), zero-shot")
    model.add_argument("--teacher", help="a teacher card (results/<preset>/models/teacher/<task>/<dataset>.json)")
    p.add_argument("--split", required=True, help="the dataset's split.json (data/<dataset>/split.json)")
    p.add_argument("--classes", default="all", choices=["base", "new", "all"],
                   help="which classes' test images, classified among those classes only (default: all)")
    p.add_argument("--text-features", default=None,
                   help="teacher text features of the split's classes (results/<preset>/models/features/"
                        "<task>/<dataset>.pt): a teacher's classifier, or a student's for another dataset "
                        "(default for a student: its own)")
    p.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when available), cpu or cuda")
    p.add_argument("--out", default=None, help="also write the scores to this JSON file")
    p = add("predict", cmd_predict, "classify a folder of images with a trained student (CSV of top-k classes)")
    p.add_argument("--student", required=True, help="the run folder (or its student.json)")
    p.add_argument("--images", required=True, help="a folder of images (searched recursively)")
    p.add_argument("--top-k", type=int, default=1, help="classes per image, most probable first (default 1)")
    p.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when available), cpu or cuda")
    p.add_argument("--out", default=None, help="write the CSV here instead of standard output")
    p = add("report", cmd_report, "tables and figures from the runs a preset plans")
    p.add_argument("--runs", nargs="+", required=True, help="run folders (each with params.json, metrics.json)")
    p.add_argument("--tables-dir", required=True, help="where Tables 1, 2 and the RSM effect go")
    p.add_argument("--figures-dir", required=True, help="where the figures (PNG + PDF) go")
    p.add_argument("--metrics-dir", required=True, help="where the files of `dvc metrics` / `dvc plots` go")
    p.add_argument("--preset", required=True, help="the preset's name (captions)")
    p.add_argument("--selection", default="best", choices=["best", "last"],
                   help="each run's scores: its selected (best) epoch or its last (default: best)")
    p.add_argument("--readme", default=None,
                   help="where the one-screen headline goes (default: README.md beside --tables-dir)")
    p.add_argument("--tsne-dataset", default=None, nargs="*",
                   help="draw Fig. 4 and the training curves for these datasets only (default: every paired one)")
    p.add_argument("--heatmap-datasets", nargs="*", default=[],
                   help="draw Fig. 3 for these datasets only (default: every paired one)")
    p.add_argument("--teacher-checks", nargs="*", default=None,
                   help="teacher_check JSON files; writes teacher_check.csv/.md into --tables-dir")
    p = add("ablation-report", cmd_ablation_report, "the omega x phi ablation table")
    p.add_argument("--runs", nargs="+", required=True, help="ablation run folders")
    p.add_argument("--out-csv", required=True, help="the ablation table (CSV; its figure and caption go beside it)")
    p.add_argument("--out-md", required=True, help="the ablation table (Markdown)")
    return parser


def main(argv: list[str] | None = None) -> None:
    from ame.fetch import FetchError
    from ame.io import OutputError

    args = build_parser().parse_args(argv)
    from ame.logs import setup_logging

    setup_logging(args.verbosity)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, NotImplementedError, FetchError, OutputError, FloatingPointError) as err:
        # Input and configuration problems: the message says what to fix; a traceback adds nothing.
        log.error(f"ame {args.command}: error: {err}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
