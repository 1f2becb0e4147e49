"""Per-run step cost of a base-to-new cell's 12 runs: lockstep + shared caches vs 12 separate runs.

    python benchmarks/lockstep.py [--precision fp32|bf16] [--reps 2] [--device cpu|cuda]

Real sizes, random weights: ViT-B/16 student (9 prompted layers + 512->768 projector, SGD) and
ViT-L/14 teacher (IVLP prompts, depth 9), batch 8 at 224 px, 100 classes. A base-to-new cell
trains 4 methods (PKD, PKD + RSM, Simple, Simple + RSM) x 3 seeds = 12 runs.

  separate: each of the 12 runs alone, as the reference trains them: the teacher's image tower on
            its batch, then its student step (prompted methods: the whole tower with prompts,
            forward and backward; Simple: the frozen tower forward, then the projector step);
  lockstep: the pipeline's way (`ame.training.lockstep`, kd.teacher_cache, runtime.group_seeds):
            per seed, one pass of the teacher and of the frozen student tower over its 8 crops
            (the cache, shared by the 4 methods), then one lockstep step of the 3 seeds per method,
            PKD and PKD + RSM through the prompted tower on 24 images, Simple and Simple + RSM
            from the cached tower features (projector only).

Printed: seconds per training step of the whole cell both ways, and their ratio (the per-run
step cost, lockstep / separate). Medians over --reps repetitions after one warm-up; the two ways
are interleaved so that drifts in the machine's speed spread over both.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ame.kd import kd_loss_per_run  # noqa: E402
from ame.models.clip import create_clip, get_tokenizer  # noqa: E402
from ame.models.student import Student  # noqa: E402
from ame.models.teacher import Teacher  # noqa: E402
from ame.rsm import RSM, StackedRSM  # noqa: E402
from ame.runtime import autocast, block_type_for  # noqa: E402
from ame.training.lockstep import StackedStudent  # noqa: E402
from ame.training.teacher_cache import teacher_logits  # noqa: E402

SCALE, KD_WEIGHT, TAU, OMEGA = 100.0, 1000.0, 1.0, 50.0
SEEDS = 3
METHODS = {"pkd": (True, False), "pkd_rsm": (True, True), "simple": (False, False), "simple_rsm": (False, True)}


class Runs:
    """R runs of one method (R = 1: a run alone), built with the pipeline's lockstep modules."""

    def __init__(self, clip, runs: int, prompted: bool, rsm: bool, device, out_dim: int = 768,
                 depth: int = 9) -> None:
        students = [Student(clip, out_dim, 4, depth if prompted else 0) for _ in range(runs)]
        self.student = StackedStudent(students).to(device).train()
        self.rsm = StackedRSM([RSM(out_dim, 64) for _ in range(runs)]).to(device) if rsm else None
        self.params = [p for p in self.student.parameters() if p.requires_grad]
        self.params += [p for p in self.rsm.parameters()] if rsm else []
        self.optimizer = torch.optim.SGD(self.params, lr=0.005, momentum=0.9, weight_decay=5e-4)
        self.runs = runs

    def step(self, device, precision, text, target, images=None, pooled=None, scalers=None) -> None:
        """One lockstep step; `scalers` (`RunScalers`): AMP's per-run loss scaling."""
        with autocast(device, precision):
            if pooled is not None:
                feats = self.student.forward_frozen(pooled)
            else:
                feats = self.student(images.reshape(self.runs, -1, *images.shape[1:]))
            logits = SCALE * feats @ text.t()
        loss = kd_loss_per_run(logits.float(), target.float(), TAU, KD_WEIGHT)
        if self.rsm is not None:
            loss = loss + OMEGA * self.rsm(feats.float(), text)
        self.optimizer.zero_grad(set_to_none=True)
        if scalers is None:
            loss.sum().backward()
            self.optimizer.step()
        else:
            scalers.backward(loss)
            scalers.step(self.optimizer, self.params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16", "amp"], default="bf16")
    parser.add_argument("--reps", type=int, default=2, help="timed repetitions of each way")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, precision, b = torch.device(args.device), args.precision, args.batch
    started = time.time()
    block = block_type_for(precision)
    torch.manual_seed(0)
    teacher = Teacher(create_clip("ViT-L-14-quickgelu", block_type=block), get_tokenizer("ViT-L-14-quickgelu"),
                      prompt_tokens=4, prompt_depth=9).to(device).eval()
    clip = create_clip("ViT-B-16-quickgelu", block_type=block)
    with torch.no_grad(), autocast(device, precision):
        text = teacher.encode_text([f"class number {i}" for i in range(args.classes)]).float()
    alone = {m: [Runs(clip, 1, *flags, device) for _ in range(SEEDS)] for m, flags in METHODS.items()}
    together = {m: Runs(clip, SEEDS, *flags, device) for m, flags in METHODS.items()}
    tower = together["simple"].student
    crops = [torch.randn(b, 3, 224, 224, device=device) for _ in range(SEEDS)]  # each seed's own crops

    def separate() -> None:
        for method, runs in alone.items():
            for seed, run in enumerate(runs):
                target = teacher_logits(teacher, crops[seed], text, SCALE, device, precision).unsqueeze(0)
                if METHODS[method][0]:
                    run.step(device, precision, text, target, images=crops[seed])
                else:
                    with torch.no_grad(), autocast(device, precision):
                        pooled = tower.frozen_features(crops[seed]).float()
                    run.step(device, precision, text, target, pooled=pooled.unsqueeze(0))

    def lockstep() -> None:
        with torch.no_grad(), autocast(device, precision):  # the cache: both frozen towers, once per seed
            targets = torch.stack([teacher_logits(teacher, x, text, SCALE, device, precision) for x in crops])
            pooled = torch.stack([tower.frozen_features(x) for x in crops]).float()
        images = torch.cat(crops)
        for method, run in together.items():
            if METHODS[method][0]:
                run.step(device, precision, text, targets, images=images)
            else:
                run.step(device, precision, text, targets, pooled=pooled)

    times: dict[str, list[float]] = {"separate": [], "lockstep": []}
    print(f"models ready in {time.time() - started:.0f}s; warm-up", file=sys.stderr, flush=True)
    for rep in range(args.reps + 1):
        for name, run in (("separate", separate), ("lockstep", lockstep)):
            tick = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if rep:
                times[name].append(time.perf_counter() - tick)
        print(f"rep {rep}/{args.reps} done ({time.time() - started:.0f}s)", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    where = torch.cuda.get_device_name() if device.type == "cuda" else \
        f"{platform.machine()}, {os.cpu_count()} logical CPUs, torch threads {args.threads}"
    print(f"# lockstep benchmark  {time.strftime('%Y-%m-%d')}  torch {torch.__version__}  {where}")
    print(f"# base-to-new cell: 4 methods x {SEEDS} seeds, batch {b} x 224 px, {args.classes} classes, "
          f"precision {precision}, median of {args.reps} after 1 warm-up")
    print(f"separate (12 runs alone, teacher online)     {med['separate']:8.2f} s per step of the cell "
          f"({med['separate'] / 12:.2f} s per run)")
    print(f"lockstep (3 seeds x 4 methods, shared caches) {med['lockstep']:8.2f} s per step of the cell "
          f"({med['lockstep'] / 12:.2f} s per run)")
    print(f"per-run step cost, lockstep / separate = {med['lockstep'] / med['separate']:.3f}  (target <= 0.55)")
    print(f"# raw seconds: separate {', '.join(f'{t:.2f}' for t in times['separate'])}; "
          f"lockstep {', '.join(f'{t:.2f}' for t in times['lockstep'])}; total wall time {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
