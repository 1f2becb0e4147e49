"""Lockstep throughput on a GPU: 1, 3, 6 and 12 PKD + RSM runs trained as one, at the paper's settings.

    python benchmarks/gpu_lockstep.py                       # CUDA, amp, ViT-B/16 student + ViT-L/14 teacher
    python benchmarks/gpu_lockstep.py --device cpu --tiny --runs 1 3 --steps 2   # a check of the script itself
    python benchmarks/gpu_lockstep.py --loader-only --workers 0 1 2            # the data loader alone (no GPU)

Random weights, batch 8 per run at 224 px, 100 classes, SGD, AMP with per-run loss scaling
(`ame.training.engine.RunScalers`), teacher online (its image tower on the R runs' 8R crops, the
costliest case; with the teacher cache a step is cheaper still). For each R: seconds per lockstep
step (median of --steps after warm-up), images/s per run (8 / step time), images/s in all, the
speed-up over one run alone (R * t_1 / t_R; target >= 4 at R = 6) and the GPU's peak memory.

Feeding the GPU: the same steps are then timed fed by the pipeline's loader (`lockstep_loader`, each
run's own crops of JPEG files decoded and augmented as the paper preset's training set does:
RandomResizedCrop to 224 px, flip, normalise; --workers processes, pinned memory; images decoded
anew each time, as for a dataset too large for runtime.decoded_cache_mb). If a loader-fed step
takes no longer than a tensor-fed one (ratio ~1), the GPU, not the loader, is the limit. The files
are synthetic (--image-size, default 500 x 375, about an ImageNet photo's size, smooth random
content saved as JPEG quality 90). `--loader-only` times the loader alone: images/s for each
worker count, to set against the images/s a GPU step consumes.

Then the grid's GPU time: `benchmarks/grid_cost.py --step-seconds t_3/3` (the effective per-run
step of the paper preset's 3-run lockstep jobs, runtime.group_seeds), which turns it into the FLOP
rate it sustains and counts the grid's exact steps, evaluation passes and shared cache passes at
that rate. The step times are measured; the grid's hours are extrapolated from them (nothing of the
grid is run here).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lockstep import SCALE, Runs  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from ame.data.images import ImageSet, build_transform  # noqa: E402
from ame.data.plan import AugmentationPlan, lockstep_loader  # noqa: E402
from ame.models.clip import create_clip, get_tokenizer  # noqa: E402
from ame.models.teacher import Teacher  # noqa: E402
from ame.runtime import autocast, block_type_for  # noqa: E402
from ame.spec import load_preset  # noqa: E402
from ame.training.engine import RunScalers  # noqa: E402
from ame.training.teacher_cache import teacher_logits  # noqa: E402


def write_images(folder: Path, count: int, width: int, height: int) -> list[tuple[Path, int]]:
    """`count` JPEG files of smooth random content (a 16 x 12 random image upsampled), as photos
    compress; returns (path, label) items."""
    generator = torch.Generator().manual_seed(0)
    items = []
    for i in range(count):
        small = torch.rand(1, 3, 12, 16, generator=generator)
        pixels = F.interpolate(small, size=(height, width), mode="bicubic").clamp(0, 1)[0]
        path = folder / f"{i:05d}.jpg"
        Image.fromarray((pixels.permute(1, 2, 0) * 255).byte().numpy()).save(path, quality=90)
        items.append((path, i % 10))
    return items


class Feed:
    """R runs' training sets over the same files, each with its own plan (seed), as a lockstep job's
    seeds; `batches(workers, device)` yields the loader's (8R, 3, size, size) batches, epoch after epoch."""

    def __init__(self, items, runs: int, size: int) -> None:
        augment = load_preset(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")["augment"]
        transform = build_transform(True, size, (augment["scale_min"], 1.0), augment["hflip"])
        self.sets = [ImageSet(items, transform, cache=False) for _ in range(runs)]
        self.plans = [AugmentationPlan.draw(len(items), 100, seed) for seed in range(1, runs + 1)]

    def batches(self, workers: int, device: torch.device):
        for epoch in range(100):
            for images, _ in lockstep_loader(self.plans, self.sets, epoch, 8, workers=workers,
                                             pin_memory=device.type == "cuda"):
                yield images.to(device, non_blocking=True)


def loader_only(args, items) -> None:
    """Images/s the loader delivers to one lockstep job of 3 runs, for each worker count."""
    print(f"# loader alone  {time.strftime('%Y-%m-%d')}  torch {torch.__version__}, {len(items)} JPEG files "
          f"{args.image_size[0]} x {args.image_size[1]} -> 224 px crops, 3 runs x batch 8, no decoded cache")
    print("| workers | images/s | images/s per worker |")
    print("|---:|---:|---:|")
    for workers in args.workers:
        batches = Feed(items, 3, 224).batches(workers, torch.device("cpu"))
        next(batches)  # start-up of the worker processes is not timed
        tick, count = time.perf_counter(), 0
        for _ in range(args.steps):
            count += next(batches).shape[0]
        rate = count / (time.perf_counter() - tick)
        print(f"| {workers} | {rate:.1f} | {rate / max(workers, 1):.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", choices=["fp32", "bf16", "amp"], default=None,
                        help="default: amp on CUDA (the paper preset's), fp32 on CPU")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 3, 6, 12])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per R (after 3 warm-up steps)")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--tiny", action="store_true", help="the miniature's tiny models (checks the script)")
    parser.add_argument("--workers", type=int, nargs="+", default=[8],
                        help="data-loading processes (the paper preset's runtime.loader_workers: 8)")
    parser.add_argument("--image-size", type=int, nargs=2, default=[500, 375], metavar=("W", "H"))
    parser.add_argument("--files", type=int, default=512, help="synthetic JPEG files")
    parser.add_argument("--loader-only", action="store_true", help="time the data loader alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        items = write_images(Path(folder), args.files, *args.image_size)
        if args.loader_only:
            loader_only(args, items)
        else:
            measure(args, items)


def measure(args, items) -> None:
    """The lockstep table (tensor-fed and loader-fed steps), then the grid's hours."""
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
    workers = args.workers[0]
    print("| runs | s per step | images/s per run | images/s in all | speed-up over 1 run | peak GPU memory | "
          f"s per step fed by the loader ({workers} workers) | loader-fed / tensor-fed |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")

    def timed(runs, scalers, next_images) -> float:
        """Median seconds of a lockstep step over --steps steps, after 3 warm-up steps."""
        times = []
        for i in range(args.steps + 3):
            tick = time.perf_counter()
            batch = next_images()
            target = teacher_logits(teacher, batch, text, SCALE, device, precision).reshape(runs.runs, 8, -1)
            runs.step(device, precision, text, target, images=batch, scalers=scalers)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - tick)
        return statistics.median(times)

    step_seconds = {}
    for r in args.runs:
        runs = Runs(clip, r, True, True, device, out_dim=int(text.shape[1]), depth=depth)
        scalers = RunScalers(r, enabled=precision == "amp")
        images = torch.randn(r * 8, 3, size, size, device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t = timed(runs, scalers, lambda: images)
        step_seconds[r] = t
        memory = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else "n/a (CPU)"
        speedup = r * step_seconds[args.runs[0]] / t / args.runs[0] if args.runs[0] == 1 else float("nan")
        feed = Feed(items, r, size).batches(workers, device)
        fed = timed(runs, scalers, lambda: next(feed))
        feed.close()  # stops the loader's worker processes
        print(f"| {r} | {t:.4f} | {8 / t:.1f} | {8 * r / t:.1f} | {speedup:.2f} | {memory} | {fed:.4f} | "
              f"{fed / t:.2f} |", flush=True)
        del runs
    if 3 in step_seconds and not args.tiny:
        per_run = step_seconds[3] / 3
        print(f"\n# grid time at the FLOP rate of {per_run:.4f} s per run-step (3-run lockstep jobs; extrapolated):")
        subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "grid_cost.py"),
                        "--step-seconds", f"{per_run:.5f}"], check=True)


if __name__ == "__main__":
    main()
