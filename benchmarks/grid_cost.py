"""What a preset's grid costs: training steps, FLOPs, GPU-hours and the disk its runs write, per
stage (not a test).

    python benchmarks/grid_cost.py [--preset config/paper.yaml] [--step-seconds S | --tflops T]

Counts are exact, from the preset and the datasets' protocol sizes (`ame.data.registry`): a K-shot
run trains on K images of every class, a full run on the whole train split, `floor(images / batch)`
steps per epoch (drop_last); every epoch scores the base-class test images, the end scores the test
split twice (last and best epoch). FLOPs per image are counted with torch's FlopCounterMode on the
preset's real models (random weights; student forward + backward with its prompts, teacher image
forward, frozen student tower forward).

The work counted is what the pipeline runs. With `kd.teacher_cache` on, the teacher's image tower
runs once per crop of a (cell, seed), shared by all the cell's methods, and so does the frozen
student tower where a prompt-free method (Simple) is in the cell; a Simple run then trains its
projector only (its FLOPs are negligible and not counted). With the cache off, every run pays its
own teacher forward, and a Simple run its frozen tower forward. Seeds trained in lockstep
(`runtime.group_seeds`) share a Simple run's evaluation passes through the frozen tower.

Hours are FLOPs at a rate: `--tflops T` (sustained), or the rate of a measured step,
`--step-seconds S` (one run's training step at the preset's batch with the teacher online, i.e.
batch x (student step + teacher forward) FLOPs in S seconds: `benchmarks/distill_step.py --device
cuda` line (b), or a lockstep job's step time / its runs, `benchmarks/gpu_lockstep.py`), or, if
neither is given, an ASSUMED rate, which the output says. Evaluation images cost their FLOPs at the
same rate. Disk: each run's `embeddings.npz` (test images x feature width, float32), `student.pt`
(trainable tensors) and its transient resume state in scratch.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ame.data.registry import get_dataset  # noqa: E402
from ame.models.clip import create_clip, get_tokenizer  # noqa: E402
from ame.models.student import Student  # noqa: E402
from ame.models.teacher import Teacher  # noqa: E402
from ame.rsm import RSM  # noqa: E402
from ame.spec import grid_specs, load_preset  # noqa: E402
from ame.spec.run import ablation_specs  # noqa: E402

# Sustained mixed-precision rate assumed when nothing was measured: about a tenth of an H100's dense
# fp16 tensor peak (989 TFLOPS), as eager PyTorch reaches on batches of a few dozen images.
ASSUMED_TFLOPS = 100.0


def count_flops(cfg: dict) -> dict:
    """FLOPs per image of the student's training step and of the teacher's and student's forward,
    and the bytes of the trainable tensors (float32): prompted student, Simple (projector), RSM."""
    size = cfg["augment"]["image_size"]
    s_arch, t_arch = cfg["models"]["student"]["arch"], cfg["models"]["teacher"]["arch"]
    teacher = Teacher(create_clip(t_arch), get_tokenizer(t_arch), prompt_tokens=cfg["teacher"]["prompt_tokens"],
                      prompt_depth=cfg["teacher"]["prompt_depth"]).eval()
    width = int(teacher.encode_text(["a"]).shape[-1])
    student = Student(create_clip(s_arch), out_dim=width, prompt_tokens=cfg["student"]["prompt_tokens"],
                      prompt_depth=cfg["student"]["prompt_depth"]).train()
    image = torch.randn(2, 3, size, size)  # 2: the projector's BatchNorm needs a batch
    with FlopCounterMode(display=False) as counter:
        student(image).sum().backward()
    step = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        student(image)
    student_forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        teacher.encode_image(image)
    trainable = sum(p.numel() for p in student.parameters() if p.requires_grad) * 4
    simple = Student(create_clip(s_arch), out_dim=width, prompt_tokens=1, prompt_depth=0)
    projector = sum(p.numel() for p in simple.parameters() if p.requires_grad) * 4
    rsm = sum(p.numel() for p in RSM(width, cfg["rsm"]["rank"], True).parameters()) * 4
    return {"student_step": step / 2, "student_forward": student_forward / 2,
            "teacher_forward": counter.get_total_flops() / 2,
            "width": width, "student_bytes": trainable, "projector_bytes": projector, "rsm_bytes": rsm}


def protocol_sizes(spec):
    """The dataset's protocol sizes (train / test images) and its number of classes."""
    info = get_dataset(spec.dataset)
    if info.remote is None or info.remote.sizes is None:
        raise SystemExit(f"{spec.dataset}: no protocol sizes (not a paper dataset)")
    return info.remote.sizes, info.num_classes


def training_steps(spec) -> int:
    """A run's optimiser steps: K images of every class (or the whole train split) per epoch, drop_last."""
    sizes, classes = protocol_sizes(spec)
    images = sizes.train if spec.setting == "full" else int(spec.setting.removesuffix("shot")) * classes
    return images // spec.optim.batch_size * spec.optim.epochs


def run_cost(spec, flops: dict, lockstep: int = 1) -> dict:
    """One run's steps, evaluation images, own GFLOPs (its student's training and evaluation, and the
    frozen towers it runs itself when the teacher cache is off) and disk. A prompt-free run trained
    in lockstep with `lockstep` runs (its seeds) shares its frozen tower's evaluation passes with them."""
    sizes, _ = protocol_sizes(spec)
    batch, epochs = spec.optim.batch_size, spec.optim.epochs
    steps = training_steps(spec)
    base_test = sizes.test // 2 if spec.task == "base2new" else sizes.test  # about half the classes
    eval_images = epochs * base_test + 2 * sizes.test
    prompted = spec.prompts is not None
    per_image = flops["student_step"] if prompted else 0.0
    if spec.teacher_cache is None:
        per_image += flops["teacher_forward"] + (0.0 if prompted else flops["student_forward"])
    evaluation = eval_images * flops["student_forward"] / (1 if prompted else lockstep)
    gflop = (steps * batch * per_image + evaluation) / 1e9
    student = flops["student_bytes"] if prompted else flops["projector_bytes"]
    rsm = flops["rsm_bytes"] if spec.rsm is not None else 0
    out_bytes = sizes.test * flops["width"] * 4 + student + rsm
    scratch = 3 * (student + rsm)  # weights, SGD momentum, best epoch's copy
    return {"runs": 1, "steps": steps, "eval_images": eval_images, "gflop": gflop, "disk": out_bytes,
            "scratch": scratch}


def shared_cost(specs: list, flops: dict) -> float:
    """GFLOPs of the frozen towers over one (cell, seed)'s crops, built once into the teacher cache for
    all of `specs` (that cell's and seed's runs): the teacher, and the frozen student tower when a
    prompt-free method is among them."""
    crops = max(training_steps(spec) * spec.optim.batch_size for spec in specs)
    per_crop = flops["teacher_forward"] + (flops["student_forward"] if any(s.prompts is None for s in specs) else 0)
    return crops * per_crop / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="config/paper.yaml")
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--step-seconds", type=float, help="measured seconds of one run's training step (teacher "
                      "online + student step at the preset's batch) on your GPU")
    rate.add_argument("--tflops", type=float, help=f"sustained rate, TFLOPS (default: ASSUMED {ASSUMED_TFLOPS:g})")
    args = parser.parse_args()
    cfg = load_preset(args.preset)
    torch.manual_seed(0)
    flops = count_flops(cfg)
    batch = cfg["optim"]["batch_size"]
    print(f"# {args.preset}: per image, student step {flops['student_step'] / 1e9:.1f} GFLOP, teacher forward "
          f"{flops['teacher_forward'] / 1e9:.1f} GFLOP, student forward {flops['student_forward'] / 1e9:.1f} GFLOP")
    stages: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    caches: dict[tuple, list] = defaultdict(list)
    lockstep = len(cfg["seeds"]) if cfg["runtime"]["group_seeds"] else 1
    for spec in [*grid_specs(cfg), *ablation_specs(cfg)]:
        stage = (f"ablation {spec.setting}" if spec.variant else
                 f"{'base-to-new' if spec.task == 'base2new' else 'cross-dataset'} {spec.setting}")
        for key, value in run_cost(spec, flops, lockstep).items():
            stages[stage][key] += value
        if spec.teacher_cache is not None:
            caches[(spec.task, spec.dataset, spec.setting, spec.seed)].append((stage, spec))
    for members in caches.values():  # a cache's cost goes to the first stage that uses it
        stages[members[0][0]]["gflop"] += shared_cost([spec for _, spec in members], flops)
    if args.step_seconds:
        tflops = batch * (flops["student_step"] + flops["teacher_forward"]) / args.step_seconds / 1e12
        basis = f"{tflops:.1f} TFLOPS, the rate of a {args.step_seconds} s step (batch {batch}) as given"
    elif args.tflops:
        tflops, basis = args.tflops, f"{args.tflops:g} TFLOPS sustained, as given"
    else:
        tflops, basis = ASSUMED_TFLOPS, f"ASSUMED {ASSUMED_TFLOPS:g} TFLOPS sustained, not measured"
    cache = "on: frozen towers once per (cell, seed)" if cfg["kd"]["teacher_cache"]["enabled"] else "off"
    print(f"# hours: FLOPs at {basis}; teacher cache {cache}; {lockstep} run(s) per lockstep job")
    print("| stage | runs | training steps | PFLOP | hours | run outputs | peak scratch per run |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    total = defaultdict(float)
    for name, s in stages.items():
        hours = s["gflop"] / 1e3 / tflops / 3600
        for key in ("runs", "steps", "disk", "gflop"):
            total[key] += s[key]
        total["hours"] += hours
        print(f"| {name} | {int(s['runs'])} | {int(s['steps']):,} | {s['gflop'] / 1e6:,.0f} | {hours:,.1f} | "
              f"{s['disk'] / 1e9:.2f} GB | {s['scratch'] / s['runs'] / 1e6:.0f} MB |")
    print(f"| **all** | {int(total['runs'])} | {int(total['steps']):,} | {total['gflop'] / 1e6:,.0f} | "
          f"{total['hours']:,.1f} | {total['disk'] / 1e9:.2f} GB | |")
    print(f"# days on one device: {total['hours'] / 24:.1f}")


if __name__ == "__main__":
    main()
