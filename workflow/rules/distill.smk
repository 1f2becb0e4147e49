SEED_GROUPS = cfg["runtime"]["group_seeds"]
ABLATION = f"{RES}/ablation/{PRESET}"
ABLATION_RUN = ABLATION + "/{dataset}/{setting}/omega{omega}_{phi}/seed{seed}"


def seed_outputs(run_pattern):
    """Grouped: one job writes every seed's run folder; otherwise one job per {seed}."""
    if SEED_GROUPS:
        return [
            f"{run_pattern}/{name}".replace("{seed}", str(s))
            for s in cfg["seeds"]
            for name in RUN_FILES
        ]
    return [f"{run_pattern}/{name}" for name in RUN_FILES]


def job_seeds(wc):
    return cfg["seeds"] if SEED_GROUPS else [int(wc.seed)]


def job_run_dirs(run_pattern, wc):
    cell = {k: v for k, v in wc.items() if k != "seed"}
    return [run_pattern.format(seed=s, **cell) for s in job_seeds(wc)]


def distill_inputs(wc, task):
    shots = ame_config.setting_shots(wc.setting)
    inputs = {
        "split": SPLIT.format(dataset=wc.dataset),
        "shots": [
            SHOTS.format(dataset=wc.dataset, shots=shots, seed=s) for s in job_seeds(wc)
        ],
        "student_backbone": BACKBONE.format(role="student"),
        "teacher": TEACHER.format(task=task, dataset=teacher_source(task, wc.dataset)),
        "text_features": FEATURES.format(task=task, dataset=wc.dataset),
    }
    if USE_TEACHER_CACHE:
        inputs["teacher_cache"] = [
            TEACHER_CACHE.format(
                task=task, dataset=wc.dataset, setting=wc.setting, seed=s
            )
            for s in job_seeds(wc)
        ]
    return inputs


DISTILL_CMD = (
    "ame distill --threads {threads} --params {params.run:q} --seeds {params.seeds}"
    " --split {input.split} --shots {input.shots} --student-backbone {input.student_backbone}"
    " --teacher {input.teacher} --text-features {input.text_features}"
    + (" --teacher-cache {input.teacher_cache}" if USE_TEACHER_CACHE else "")
    + " --runs-root {params.root} --scratch-root {params.scratch} --out-dirs {params.out_dirs} > {log} 2>&1"
)
GPU = 0 if cfg["runtime"]["device"] == "cpu" else 1


# The teacher's logits on a cell's pre-drawn augmentations, built once and read by every method of
# the cell (kd.teacher_cache); deleted once its last distillation job has finished.
if USE_TEACHER_CACHE:

    rule teacher_cache:
        input:
            split=SPLIT,
            shots=lambda wc: SHOTS.format(
                dataset=wc.dataset,
                shots=ame_config.setting_shots(wc.setting),
                seed=wc.seed,
            ),
            teacher=lambda wc: TEACHER.format(
                task=wc.task, dataset=teacher_source(wc.task, wc.dataset)
            ),
            text_features=FEATURES,
        output:
            cache=temp(TEACHER_CACHE),
        log:
            f"{LOGS}/teacher_cache/{{task}}_{{dataset}}_{{setting}}_seed{{seed}}.log",
        threads: THREADS
        resources:
            mem_mb=16000,
            gpu=GPU,
        params:
            run=lambda wc: as_json(
                ame_config.teacher_cache_params(cfg, wc.task, wc.dataset, wc.setting)
            ),
        shell:
            "ame teacher-cache --threads {threads} --params {params.run:q} --seed {wildcards.seed}"
            " --split {input.split} --shots {input.shots} --teacher {input.teacher}"
            " --text-features {input.text_features} --out {output.cache} > {log} 2>&1"


rule distill:
    input:
        unpack(lambda wc: distill_inputs(wc, wc.task)),
    output:
        seed_outputs(RUN),
    log:
        f"{LOGS}/distill/{{task}}_{{dataset}}_{{setting}}_{{method}}"
        + ("" if SEED_GROUPS else "_seed{seed}")
        + ".log",
    threads: THREADS
    resources:
        mem_mb=16000,
        gpu=GPU,
    params:
        run=lambda wc: as_json(
            ame_config.distill_params(cfg, wc.task, wc.dataset, wc.setting, wc.method)
        ),
        seeds=lambda wc: " ".join(map(str, job_seeds(wc))),
        out_dirs=lambda wc: job_run_dirs(RUN, wc),
        root=RUNS,
        scratch=SCRATCH,
    shell:
        DISTILL_CMD


# The ablation the paper lacks: omega x (phi trained | frozen) for PKD+RSM on one cell.
rule distill_ablation:
    input:
        unpack(lambda wc: distill_inputs(wc, "base2new")),
    output:
        seed_outputs(ABLATION_RUN),
    log:
        f"{LOGS}/ablation/{{dataset}}_{{setting}}_omega{{omega}}_{{phi}}"
        + ("" if SEED_GROUPS else "_seed{seed}")
        + ".log",
    wildcard_constraints:
        omega="[0-9.]+",
        phi="trained|frozen",
    threads: THREADS
    resources:
        mem_mb=16000,
        gpu=GPU,
    params:
        run=lambda wc: as_json(
            ame_config.distill_params(
                cfg,
                "base2new",
                wc.dataset,
                wc.setting,
                "pkd_rsm",
                omega=float(wc.omega),
                rsm_trainable=wc.phi == "trained",
            )
        ),
        seeds=lambda wc: " ".join(map(str, job_seeds(wc))),
        out_dirs=lambda wc: job_run_dirs(ABLATION_RUN, wc),
        root=ABLATION,
        scratch=f"{SCRATCH}/ablation",
    shell:
        DISTILL_CMD


rule zeroshot:
    input:
        split=SPLIT,
        student_backbone=BACKBONE.format(role="student"),
    output:
        metrics=RUNS + "/{task}/{dataset}/zeroshot/zeroshot/seed0/metrics.json",
        embeddings=RUNS + "/{task}/{dataset}/zeroshot/zeroshot/seed0/embeddings.npz",
    log:
        f"{LOGS}/zeroshot/{{task}}_{{dataset}}.log",
    threads: THREADS
    params:
        run=lambda wc: as_json(
            ame_config.distill_params(cfg, wc.task, wc.dataset, "zeroshot", "zeroshot")
        ),
        out_dir=lambda wc, output: str(Path(output.metrics).parent),
    shell:
        "ame zeroshot --threads {threads} --params {params.run:q} --student-backbone {input.student_backbone}"
        " --split {input.split} --out-dir {params.out_dir} > {log} 2>&1"
