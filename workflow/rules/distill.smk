def distill_inputs(wc, seeds):
    shots = ame_config.setting_shots(wc.setting)
    return {
        "split": SPLIT.format(dataset=wc.dataset),
        "shots": [SHOTS.format(dataset=wc.dataset, shots=shots, seed=s) for s in seeds],
        "student_backbone": BACKBONE.format(role="student"),
        "teacher": TEACHER.format(task=wc.task, dataset=teacher_source(wc.task, wc.dataset)),
        "text_features": FEATURES.format(task=wc.task, dataset=wc.dataset),
    }


DISTILL_CMD = (
    "ame distill --threads {threads} --params {params.run:q} --seeds {params.seeds}"
    " --split {input.split} --shots {input.shots} --student-backbone {input.student_backbone}"
    " --teacher {input.teacher} --text-features {input.text_features}"
    " --runs-root {RUNS} --scratch-root {SCRATCH} --out-dirs {params.out_dirs} > {log} 2>&1"
)


if cfg["runtime"]["group_seeds"]:

    # One job per grid cell runs every seed: on small grids, process start-up dominates.
    rule distill:
        input:
            unpack(lambda wc: distill_inputs(wc, cfg["seeds"])),
        output:
            [f"{RUN}/{name}".replace("{seed}", str(s)) for s in cfg["seeds"] for name in RUN_FILES],
        params:
            run=lambda wc: as_json(ame_config.distill_params(cfg, wc.task, wc.dataset, wc.setting, wc.method)),
            seeds=" ".join(map(str, cfg["seeds"])),
            out_dirs=lambda wc: run_dirs(wc, cfg["seeds"]),
        log:
            f"{LOGS}/distill/{{task}}_{{dataset}}_{{setting}}_{{method}}.log",
        threads: THREADS
        resources:
            mem_mb=8000,
        shell:
            DISTILL_CMD

else:

    rule distill:
        input:
            unpack(lambda wc: distill_inputs(wc, [int(wc.seed)])),
        output:
            [f"{RUN}/{name}" for name in RUN_FILES],
        params:
            run=lambda wc: as_json(ame_config.distill_params(cfg, wc.task, wc.dataset, wc.setting, wc.method)),
            seeds=lambda wc: wc.seed,
            out_dirs=lambda wc: run_dirs(wc, [wc.seed]),
        log:
            f"{LOGS}/distill/{{task}}_{{dataset}}_{{setting}}_{{method}}_seed{{seed}}.log",
        threads: THREADS
        resources:
            mem_mb=16000,
            gpu=1 if cfg["runtime"]["device"] != "cpu" else 0,
        shell:
            DISTILL_CMD


rule zeroshot:
    input:
        split=SPLIT,
        student_backbone=BACKBONE.format(role="student"),
    output:
        metrics=RUNS + "/{task}/{dataset}/zeroshot/zeroshot/seed0/metrics.json",
        embeddings=RUNS + "/{task}/{dataset}/zeroshot/zeroshot/seed0/embeddings.npz",
    params:
        run=lambda wc: as_json(ame_config.distill_params(cfg, wc.task, wc.dataset, "zeroshot", "zeroshot")),
        out_dir=lambda wc, output: str(Path(output.metrics).parent),
    log:
        f"{LOGS}/zeroshot/{{task}}_{{dataset}}.log",
    threads: THREADS
    shell:
        "ame zeroshot --threads {threads} --params {params.run:q} --student-backbone {input.student_backbone}"
        " --split {input.split} --out-dir {params.out_dir} > {log} 2>&1"
