# Path patterns (each appears once, here) and input functions. No science in rules: every job
# is one `ame <step>` call with the parameter dict `ame.config` derives for it.
import json

from ame import config as ame_config

PRESET = cfg["preset"]
DATA = cfg["data_root"]
RES = cfg["results_root"]
MODELS = f"{RES}/models/{PRESET}"
RUNS = f"{RES}/runs/{PRESET}"
LOGS = f"{RES}/logs/{PRESET}"
SCRATCH = f"{RES}/scratch/{PRESET}"
THREADS = cfg["runtime"]["threads"]

SPLIT = DATA + "/{dataset}/split.json"
SHOTS = DATA + "/{dataset}/shots/{shots}_seed{seed}.json"
BACKBONE = MODELS + "/backbone/{role}.json"
TEACHER = MODELS + "/teacher/{task}/{dataset}.json"
FEATURES = MODELS + "/features/{task}/{dataset}.pt"
TEACHER_CHECK = MODELS + "/teacher_check/{task}/{dataset}.json"
RUN = RUNS + "/{task}/{dataset}/{setting}/{method}/seed{seed}"
# kd.teacher_cache: one per (task, dataset, setting, seed), shared by every method of the cell.
TEACHER_CACHE = (
    RES
    + "/cache/"
    + PRESET
    + "/teacher_outputs/{task}/{dataset}/{setting}/seed{seed}.pt"
)
USE_TEACHER_CACHE = cfg["kd"]["teacher_cache"]["enabled"]
RUN_FILES = ("metrics.json", "history.csv", "embeddings.npz", "student.pt")


wildcard_constraints:
    dataset="[A-Za-z0-9]+",
    task="base2new|xd",
    setting="[0-9]+shot|full",
    method="[a-z_]+",
    seed="[0-9]+",
    shots="[0-9]+|full",
    role="student|teacher",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def custom_prepare_args(dataset):
    """`--preset-file` for custom datasets only, so the other datasets' jobs do not change."""
    if dataset in cfg["custom_datasets"]:
        return f"--preset-file {PRESET_FILE}"
    return ""


def teacher_source(task, dataset):
    """Base-to-new: each dataset's own teacher; cross-dataset: the source's teacher."""
    return dataset if task == "base2new" else cfg["cross_dataset"]["source"]


def run_dirs(wildcards, seeds):
    cell = {k: wildcards[k] for k in ("task", "dataset", "setting", "method")}
    return [RUN.format(seed=s, **cell) for s in seeds]


def all_run_outputs():
    seeds = cfg["seeds"]
    out = [
        f"{RUN.format(task=c.task, dataset=c.dataset, setting=c.setting, method=c.method, seed=s)}/metrics.json"
        for c in ame_config.cells(cfg)
        for s in seeds
    ]
    zeroshot = [("base2new", d) for d in cfg["datasets"]]
    if cfg["cross_dataset"].get("enabled", False):
        zeroshot += [("xd", t) for t in cfg["cross_dataset"]["targets"]]
    out += [
        f"{RUNS}/{task}/{dataset}/zeroshot/zeroshot/seed0/metrics.json"
        for task, dataset in zeroshot
    ]
    return out


def all_model_outputs():
    out = [BACKBONE.format(role=r) for r in ("student", "teacher")]
    out += [
        TEACHER.format(task=t, dataset=d) for t, d in ame_config.teacher_datasets(cfg)
    ]
    out += [
        FEATURES.format(task=c.task, dataset=c.dataset) for c in ame_config.cells(cfg)
    ]
    out += teacher_check_outputs()
    return sorted(set(out))


def teacher_check_outputs():
    return [
        TEACHER_CHECK.format(task=t, dataset=d)
        for t, d in ame_config.teacher_datasets(cfg)
    ]


def all_data_outputs():
    seeds = sorted(set(cfg["seeds"]) | {cfg["teacher"]["seed"]})
    out = [SPLIT.format(dataset=d) for d in ame_config.all_datasets(cfg)]
    for c in ame_config.cells(cfg):
        out += [
            SHOTS.format(
                dataset=c.dataset, shots=ame_config.setting_shots(c.setting), seed=s
            )
            for s in cfg["seeds"]
        ]
    out += [
        SHOTS.format(
            dataset=d, shots=cfg["teacher"]["shots"], seed=cfg["teacher"]["seed"]
        )
        for _, d in ame_config.teacher_datasets(cfg)
    ]
    return sorted(set(out))


def ablation_outputs():
    a = cfg["ablation"]
    setting = ame_config.setting_name(a["shots"])
    pattern = f"{RES}/ablation/{PRESET}/{{dataset}}/{{setting}}/omega{{omega}}_{{phi}}/seed{{seed}}/metrics.json"
    return [
        pattern.format(
            dataset=a["dataset"], setting=setting, omega=f"{w:g}", phi=phi, seed=s
        )
        for w in a["omegas"]
        for phi in ("trained", "frozen")
        for s in cfg["seeds"]
    ]
