rule backbone:
    input:
        splits=lambda wc: (
            expand(SPLIT, dataset=ame_config.all_datasets(cfg))
            if cfg["models"][wc.role]["weights"] == "pretrain"
            else []
        ),
    output:
        card=BACKBONE,
        weights=MODELS + "/backbone/{role}.pt",
    log:
        f"{LOGS}/backbone/{{role}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
    params:
        run=lambda wc: as_json(ame_config.backbone_params(cfg, wc.role)),
    shell:
        "ame backbone --threads {threads} --params {params.run:q} --splits {input.splits}"
        " --out-weights {output.weights} --out-card {output.card} > {log} 2>&1"


rule teacher:
    input:
        backbone=BACKBONE.format(role="teacher"),
        split=SPLIT,
        shots=lambda wc: (
            SHOTS.format(
                dataset=wc.dataset,
                shots=cfg["teacher"]["shots"],
                seed=cfg["teacher"]["seed"],
            )
            if cfg["teacher"]["source"] == "train"
            else []
        ),
    output:
        card=TEACHER,
        weights=MODELS + "/teacher/{task}/{dataset}.pt",
    log:
        f"{LOGS}/teacher/{{task}}_{{dataset}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
    params:
        run=lambda wc: as_json(ame_config.teacher_params(cfg, wc.task, wc.dataset)),
    shell:
        "ame teacher --threads {threads} --params {params.run:q} --backbone {input.backbone}"
        " --split {input.split} --shots {input.shots} --out-weights {output.weights}"
        " --out-card {output.card} > {log} 2>&1"


rule teacher_features:
    input:
        teacher=lambda wc: TEACHER.format(
            task=wc.task, dataset=teacher_source(wc.task, wc.dataset)
        ),
        split=SPLIT,
    output:
        features=FEATURES,
    log:
        f"{LOGS}/features/{{task}}_{{dataset}}.log",
    threads: THREADS
    params:
        device=cfg["runtime"]["device"],
    shell:
        "ame teacher-features --threads {threads} --teacher {input.teacher} --split {input.split}"
        " --device {params.device} --out {output.features} > {log} 2>&1"


rule teacher_check:
    input:
        teacher=lambda wc: TEACHER.format(
            task=wc.task, dataset=teacher_source(wc.task, wc.dataset)
        ),
        features=FEATURES,
        split=SPLIT,
    output:
        check=TEACHER_CHECK,
    log:
        f"{LOGS}/teacher_check/{{task}}_{{dataset}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
    params:
        run=lambda wc: as_json(
            ame_config.teacher_check_params(cfg, wc.task, wc.dataset)
        ),
    shell:
        "ame teacher-check --threads {threads} --params {params.run:q} --teacher {input.teacher}"
        " --features {input.features} --split {input.split} --out {output.check} > {log} 2>&1"
