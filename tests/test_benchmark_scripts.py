"""The GPU benchmark runs where no GPU is: on CPU with the miniature's tiny models, it measures
every requested lockstep size, fed by tensors and by the pipeline's loader over JPEG files, and
prints one table row each; its loader-only mode times each worker count (the script itself is what
is checked)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_lockstep_benchmark_measures_each_lockstep_size_on_cpu_with_tiny_models():
    out = subprocess.run([sys.executable, "benchmarks/gpu_lockstep.py", "--device", "cpu", "--tiny",
                          "--runs", "1", "3", "--steps", "2", "--workers", "1", "--files", "24",
                          "--image-size", "64", "48"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| ") and "runs" not in line]
    assert [int(r[0]) for r in rows] == [1, 3]
    seconds, per_run, total, speedup = (float(rows[1][i]) for i in (1, 2, 3, 4))
    assert seconds > 0 and per_run > 0 and abs(total - 3 * per_run) < 0.2
    assert float(rows[0][4]) == 1.0 and speedup > 0  # one run is its own reference
    fed, ratio = float(rows[1][6]), float(rows[1][7])
    assert fed > 0 and abs(ratio - fed / seconds) < 0.01 * ratio + 0.01


def test_the_loader_benchmark_times_each_worker_count():
    out = subprocess.run([sys.executable, "benchmarks/gpu_lockstep.py", "--loader-only", "--workers", "0", "1",
                          "--steps", "2", "--files", "16", "--image-size", "64", "48"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| ") and "workers" not in line]
    assert [int(r[0]) for r in rows] == [0, 1]
    assert all(float(r[1]) > 0 for r in rows)
