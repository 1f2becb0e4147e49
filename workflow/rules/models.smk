PRETRAINED_ROLES = [
    r for r in ("student", "teacher") if cfg["models"][r]["weights"] == "pretrain"
]


# A backbone pre-trained here (weights: pretrain): its weights file and card.
rule backbone:
    input:
        splits=expand(L.split, dataset=ame_grid.all_datasets(cfg)),
    output:
        card=L.backbone,
        weights=L.backbone_weights,
    log:
        L.log("backbone", "{role}"),
    wildcard_constraints:
        role=one_of(PRETRAINED_ROLES),
    threads: job_threads(cfg, "backbone")
    resources:
        **job_resources(cfg, "backbone"),
    params:
        run=lambda wc: as_json(ame_grid.backbone_params(cfg, wc.role)),
        code=code("backbone"),
    shell:
        "ame backbone --threads {threads} --params {params.run:q} --splits {input.splits:q}"
        " --out-weights {output.weights:q} --out-card {output.card:q} > {log:q} 2>&1"


# A backbone whose weights come from elsewhere (open_clip's `openai` tag or a local file): its card
# only, recording where the weights are and their sha256. It runs with the backbone resources.
rule backbone_card:
    input:
        # A local weights file is an input: replacing it rebuilds the card (and what depends on it).
        weights_file=lambda wc: (
            []
            if cfg["models"][wc.role]["weights"] == "openai"
            else [cfg["models"][wc.role]["weights"]]
        ),
    output:
        card=L.backbone,
    log:
        L.log("backbone", "{role}"),
    wildcard_constraints:
        role=one_of({"student", "teacher"} - set(PRETRAINED_ROLES)),
    threads: job_threads(cfg, "backbone")
    resources:
        **job_resources(cfg, "backbone"),
    params:
        run=lambda wc: as_json(ame_grid.backbone_params(cfg, wc.role)),
        code=code("backbone"),
    shell:
        "ame backbone --threads {threads} --params {params.run:q} --out-card {output.card:q} > {log:q} 2>&1"


rule teacher:
    input:
        backbone=L.backbone.format(role="teacher"),
        split=L.split,
        shots=lambda wc: (
            L.shots.format(
                dataset=wc.dataset,
                shots=cfg["teacher"]["shots"],
                seed=cfg["teacher"]["seed"],
            )
            if cfg["teacher"]["source"] == "train"
            else []
        ),
    output:
        card=L.teacher,
        weights=L.teacher_weights,
    log:
        L.log("teacher", "{task}_{dataset}"),
    threads: job_threads(cfg, "teacher")
    resources:
        **job_resources(cfg, "teacher"),
    params:
        run=lambda wc: as_json(ame_grid.teacher_params(cfg, wc.task, wc.dataset)),
        code=code("teacher"),
    shell:
        "ame teacher --threads {threads} --params {params.run:q} --backbone {input.backbone:q}"
        " --split {input.split:q} --shots {input.shots:q} --out-weights {output.weights:q}"
        " --out-card {output.card:q} > {log:q} 2>&1"


rule teacher_features:
    input:
        teacher=source_teacher,
        split=L.split,
    output:
        features=L.features,
    log:
        L.log("features", "{task}_{dataset}"),
    threads: job_threads(cfg, "teacher_features")
    resources:
        **job_resources(cfg, "teacher_features"),
    params:
        device=cfg["runtime"]["device"],
        code=code("teacher-features"),
    shell:
        "ame teacher-features --threads {threads} --teacher {input.teacher:q} --split {input.split:q}"
        " --device {params.device} --out {output.features:q} > {log:q} 2>&1"


rule teacher_check:
    input:
        teacher=source_teacher,
        features=L.features,
        split=L.split,
    output:
        check=L.teacher_check,
    log:
        L.log("teacher_check", "{task}_{dataset}"),
    threads: job_threads(cfg, "teacher_check")
    resources:
        **job_resources(cfg, "teacher_check"),
    params:
        run=lambda wc: as_json(ame_grid.teacher_check_params(cfg, wc.task, wc.dataset)),
    shell:
        "ame teacher-check --threads {threads} --params {params.run:q} --teacher {input.teacher:q}"
        " --features {input.features:q} --split {input.split:q} --out {output.check:q} > {log:q} 2>&1"
