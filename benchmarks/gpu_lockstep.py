"""Lockstep throughput on a GPU: 1, 3, 6 and 12 PKD + RSM runs trained as one, at the paper's settings.

    python benchmarks/gpu_lockstep.py                       # CUDA, amp, ViT-B/16 student + ViT-L/14 teacher
    python benchmarks/gpu_lockstep.py --device cpu --tiny --runs 1 3 --steps 2   # a check of the script itself

Random weights, batch 8 per run at 224 px, 100 classes, SGD, AMP with per-run loss scaling
(`ame.training.engine.RunScalers`), teacher online (its image tower on the R runs' 8R crops, the
costliest case; with the teacher cache a step is cheaper still). For each R: seconds per lockstep
step (median of --steps after warm-up), images/s per run (8 / step time), images/s in all, the
speed-up over one run alone (R * t_1 / t_R; target >= 4 at R = 6) and the GPU's peak memory.

Then the grid's GPU time: `benchmarks/grid_cost.py` (exact step counts of config/paper.yaml, and
evaluation passes converted at the step's FLOP rate) at the effective per-run step time of
3-run lockstep jobs (t_3 / 3, the paper preset's runtime.group_seeds). The step times are
measured; the grid's hours are extrapolated from them (nothing of the grid is run here).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lockstep import SCALE, Runs  # noqa: E402

import torch  # noqa: E402

from ame.models.clip import create_clip, get_tokenizer  # noqa: E402
from ame.models.teacher import Teacher  # noqa: E402
from ame.runtime import autocast, block_type_for  # noqa: E402
from ame.training.engine import RunScalers  # noqa: E402
from ame.training.teacher_cache import teacher_logits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", choices=["fp32", "bf16", "amp"], default=None,
                        help="default: amp on CUDA (the paper preset's), fp32 on CPU")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 3, 6, 12])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per R (after 3 warm-up steps)")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--tiny", action="store_true", help="the miniature's tiny models (checks the script)")
    args = parser.parse_args()
    device = torch.device(args.device)
    precision = args.precision or ("amp" if device.type == "cuda" else "fp32")
    teacher_arch, student_arch = (("ame-tiny-teacher", "ame-tiny-student") if args.tiny
                                  else ("ViT-L-14-quickgelu", "ViT-B-16-quickgelu"))
    size = 32 if args.tiny else 224
    depth = 2 if args.tiny else 9
    torch.manual_seed(0)
    block = block_type_for(precision)
    teacher = Teacher(create_clip(teacher_arch, block_type=block), get_tokenizer(teacher_arch), prompt_tokens=4,
                      prompt_depth=depth).to(device).eval()
    clip = create_clip(student_arch, block_type=block)
    with torch.no_grad(), autocast(device, precision):
        text = teacher.encode_text([f"class number {i}" for i in range(args.classes)]).float()
    print(f"# lockstep on {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}  "
          f"{time.strftime('%Y-%m-%d')}  torch {torch.__version__}  {student_arch} + {teacher_arch}, batch 8 per "
          f"run at {size} px, {args.classes} classes, precision {precision}, teacher online")
    print("| runs | s per step | images/s per run | images/s in all | speed-up over 1 run | peak GPU memory |")
    print("|---:|---:|---:|---:|---:|---:|")
    step_seconds = {}
    for r in args.runs:
        runs = Runs(clip, r, True, True, device, out_dim=int(text.shape[1]), depth=depth)
        scalers = RunScalers(r, enabled=precision == "amp")
        images = torch.randn(r * 8, 3, size, size, device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(args.steps + 3):
            tick = time.perf_counter()
            target = teacher_logits(teacher, images, text, SCALE, device, precision).reshape(r, 8, -1)
            runs.step(device, precision, text, target, images=images, scalers=scalers)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - tick)
        t = statistics.median(times)
        step_seconds[r] = t
        memory = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else "n/a (CPU)"
        speedup = r * step_seconds[args.runs[0]] / t / args.runs[0] if args.runs[0] == 1 else float("nan")
        print(f"| {r} | {t:.4f} | {8 / t:.1f} | {8 * r / t:.1f} | {speedup:.2f} | {memory} |", flush=True)
        del runs
    if 3 in step_seconds and not args.tiny:
        per_run = step_seconds[3] / 3
        print(f"\n# grid time at {per_run:.4f} s per run-step (3-run lockstep jobs; extrapolated from step counts):")
        subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "grid_cost.py"),
                        "--step-seconds", f"{per_run:.5f}"], check=True)


if __name__ == "__main__":
    main()
