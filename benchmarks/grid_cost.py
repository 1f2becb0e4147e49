"""What a preset's grid costs: training steps, teacher forwards, evaluation passes, GPU-hours and the
disk its runs write, per stage (not a test).

    python benchmarks/grid_cost.py [--preset config/paper.yaml] [--step-seconds S]

Counts are exact, from the preset and the datasets' protocol sizes (`ame.data.registry`): a K-shot
run trains on K images of every class, a full run on the whole train split, `floor(images / batch)`
steps per epoch (drop_last); every epoch scores the base-class test images, the end scores the test
split twice (last and best epoch). FLOPs per image are counted with torch's FlopCounterMode on the
preset's real models (random weights; student forward + backward with its prompts, teacher image
forward). Time per training step (teacher forward + student step at the preset's batch) is what you
measured (`--step-seconds`, variant (b) of `distill_step.py --device cuda` on your GPU) or, if not
given, an ASSUMED 0.1 s; evaluation images cost their share of FLOPs at the same rate. The output
says which. Disk: each run's `embeddings.npz` (test images x feature width, float32),
`student.pt` (trainable tensors) and its transient resume state in scratch.
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

ASSUMED_STEP_SECONDS = 0.1


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


def run_cost(spec, flops: dict) -> dict:
    info = get_dataset(spec.dataset)
    sizes, classes = info.remote.sizes if info.remote else None, info.num_classes
    if sizes is None:
        raise SystemExit(f"{spec.dataset}: no protocol sizes (not a paper dataset)")
    shots = spec.setting.removesuffix("shot")
    images = sizes.train if spec.setting == "full" else int(shots) * classes
    batch, epochs = spec.optim.batch_size, spec.optim.epochs
    steps = images // batch * epochs
    base_test = sizes.test // 2 if spec.task == "base2new" else sizes.test  # about half the classes
    eval_images = epochs * base_test + 2 * sizes.test
    gflop = (steps * batch * (flops["student_step"] + flops["teacher_forward"])
             + eval_images * flops["student_forward"]) / 1e9
    student = flops["student_bytes"] if spec.prompts is not None else flops["projector_bytes"]
    rsm = flops["rsm_bytes"] if spec.rsm is not None else 0
    out_bytes = sizes.test * flops["width"] * 4 + student + rsm
    scratch = 3 * (student + rsm)  # weights, SGD momentum, best epoch's copy
    return {"runs": 1, "steps": steps, "eval_images": eval_images, "gflop": gflop, "disk": out_bytes,
            "scratch": scratch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="config/paper.yaml")
    parser.add_argument("--step-seconds", type=float, help="measured seconds per training step (teacher "
                        "forward + student step at the preset's batch) on your GPU; default: ASSUMED 0.1 s")
    args = parser.parse_args()
    cfg = load_preset(args.preset)
    torch.manual_seed(0)
    flops = count_flops(cfg)
    print(f"# {args.preset}: per image, student step {flops['student_step'] / 1e9:.1f} GFLOP, teacher forward "
          f"{flops['teacher_forward'] / 1e9:.1f} GFLOP, student forward {flops['student_forward'] / 1e9:.1f} GFLOP")
    stages: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    for spec in grid_specs(cfg):
        name = f"{'base-to-new' if spec.task == 'base2new' else 'cross-dataset'} {spec.setting}"
        for key, value in run_cost(spec, flops).items():
            stages[name][key] += value
    for spec in ablation_specs(cfg):
        for key, value in run_cost(spec, flops).items():
            stages[f"ablation {spec.setting}"][key] += value
    batch = cfg["optim"]["batch_size"]
    step_seconds = args.step_seconds or ASSUMED_STEP_SECONDS
    basis = (f"{step_seconds} s per training step (batch {batch}) as given" if args.step_seconds else
             f"ASSUMED {step_seconds} s per training step (batch {batch}), not measured")
    print(f"# hours: {basis}; evaluation images at the same FLOP rate")
    print("| stage | runs | training steps | hours | run outputs | peak scratch per run |")
    print("|---|---:|---:|---:|---:|---:|")
    total = defaultdict(float)
    for name, s in stages.items():
        step_flops = batch * (flops["student_step"] + flops["teacher_forward"])
        hours = s["gflop"] * 1e9 / step_flops * step_seconds / 3600
        for key in ("runs", "steps", "disk"):
            total[key] += s[key]
        total["hours"] += hours
        print(f"| {name} | {int(s['runs'])} | {int(s['steps']):,} | {hours:,.1f} | {s['disk'] / 1e9:.2f} GB | "
              f"{s['scratch'] / s['runs'] / 1e6:.0f} MB |")
    print(f"| **all** | {int(total['runs'])} | {int(total['steps']):,} | {total['hours']:,.1f} | "
          f"{total['disk'] / 1e9:.2f} GB | |")
    print(f"# days on one device: {total['hours'] / 24:.1f}")


if __name__ == "__main__":
    main()
