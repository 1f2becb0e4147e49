"""Where every file of a preset lives: the one holder of path patterns.

Rules, CLI and report ask this module; nobody else composes paths or parses folder names. Every
output of a preset lives under `<results_root>/<preset>/`, so presets never overwrite each other;
prepared data (`<data_root>/<dataset>/`) is shared, being the same for every preset.

```
<data_root>/<dataset>/split.json, shots/<K|full>_seed<s>.json
<results_root>/<preset>/models/backbone/<role>.{json,pt}
                        models/teacher/<task>/<dataset>.{json,pt}   models/features/<task>/<dataset>.pt
                        models/teacher_check/<task>/<dataset>.json
                        cache/teacher_outputs/<task>/<dataset>/<setting>/seed<s>.pt
                        runs/<task>/<dataset>/<setting>/<method>/seed<s>/          (the grid, zero-shot rows)
                        ablation/<task>/<dataset>/<setting>/<method>/<variant>/seed<s>/
                        ablation/ablation.{csv,md}
                        tables/  figures/  metrics/  logs/  scratch/
```
"""

from __future__ import annotations

from ame.spec.run import RunSpec

# Files of one distillation run; the zero-shot row writes the first three.
ZEROSHOT_FILES = ("metrics.json", "params.json", "embeddings.npz")
RUN_FILES = (*ZEROSHOT_FILES, "history.csv", "student.safetensors", "student.json")
SEED_FOLDER = "seed{seed}"

REPORT_TABLES = (tuple(f"{name}.{ext}" for name in ("table1", "table2", "rsm_effect")
                       for ext in ("csv", "md", "tex", "html"))
                 + ("teacher_check.csv", "teacher_check.md", "teacher_check.html", "summary.html")
                 # captions of the HTML report's pages (ame.report.captions)
                 + tuple(f"{name}.caption.rst" for name in ("table1", "table2", "rsm_effect",
                                                             "teacher_check", "summary")))
REPORT_METRICS = ("summary.json", "runs.json")
ABLATION_TABLES = ("ablation.csv", "ablation.md", "ablation.caption.rst")


class Layout:
    """Paths of resolved preset `cfg` (as strings: Snakemake patterns keep `{wildcards}`)."""

    def __init__(self, cfg: dict) -> None:
        self.data = cfg["data_root"]
        self.root = f"{cfg['results_root']}/{cfg['preset']}"
        # Patterns with Snakemake wildcards; format() them for one file.
        self.split = f"{self.data}/{{dataset}}/split.json"
        self.shots = f"{self.data}/{{dataset}}/shots/{{shots}}_seed{{seed}}.json"
        models = f"{self.root}/models"
        self.backbone = f"{models}/backbone/{{role}}.json"
        self.backbone_weights = f"{models}/backbone/{{role}}.pt"
        self.teacher = f"{models}/teacher/{{task}}/{{dataset}}.json"
        self.teacher_weights = f"{models}/teacher/{{task}}/{{dataset}}.pt"
        self.features = f"{models}/features/{{task}}/{{dataset}}.pt"
        self.teacher_check = f"{models}/teacher_check/{{task}}/{{dataset}}.json"
        self.teacher_cache = f"{self.root}/cache/teacher_outputs/{{task}}/{{dataset}}/{{setting}}/seed{{seed}}.pt"
        # A run folder is <root>/<cell>/seed<s>; `cell` (e.g. runs/base2new/Digits/4shot/pkd) is
        # one Snakemake wildcard whose values are exactly the planned cells.
        self.run = f"{self.root}/{{cell}}/{SEED_FOLDER}"
        self.tables = f"{self.root}/tables"
        self.figures = f"{self.root}/figures"
        self.metrics = f"{self.root}/metrics"
        self.logs = f"{self.root}/logs"
        self.scratch = f"{self.root}/scratch"
        # The one-screen summary the report writes: the headline next to the paper's claims.
        self.readme = f"{self.root}/README.md"

    # ------------------------------------------------------------------ runs
    @staticmethod
    def cell(spec: RunSpec) -> str:
        """The run's folder without its seed, relative to the preset root."""
        parts = ["ablation" if spec.variant else "runs", spec.task, spec.dataset, spec.setting, spec.method]
        if spec.variant:
            parts.append(spec.variant)
        return "/".join(parts)

    def run_dir(self, spec: RunSpec) -> str:
        return self.run.format(cell=self.cell(spec), seed=spec.seed)

    def run_file(self, spec: RunSpec, name: str) -> str:
        return f"{self.run_dir(spec)}/{name}"

    def scratch_dir(self, spec: RunSpec) -> str:
        """Resume state of a run: outside its declared outputs (the engines delete those on rerun)."""
        return f"{self.scratch}/{self.cell(spec)}/{SEED_FOLDER.format(seed=spec.seed)}"

    def log(self, step: str, name: str) -> str:
        return f"{self.logs}/{step}/{name}.log"

    # ------------------------------------------------------------------ report
    def table(self, name: str) -> str:
        return f"{self.tables}/{name}"

    def figure(self, name: str) -> str:
        return f"{self.figures}/{name}"

    def metric(self, name: str) -> str:
        return f"{self.metrics}/{name}"

    def ablation_table(self, name: str) -> str:
        """The ablation's tables sit beside its runs (one DVC stage owns that folder)."""
        return f"{self.root}/ablation/{name}"

