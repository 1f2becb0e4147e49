# Distillation runs: one rule for the grid and the ablation variants alike. Each job gets its
# cell's run specification (JSON, without the seed) and writes params.json beside each run.


# The teacher's logits on a cell's pre-drawn augmentations, built once and read by every method of
# the cell (kd.teacher_cache); deleted once its last distillation job has finished.
if USE_TEACHER_CACHE:

    rule teacher_cache:
        input:
            split=L.split,
            shots=lambda wc: L.shots.format(
                dataset=wc.dataset,
                shots=ame_grid.setting_shots(wc.setting),
                seed=wc.seed,
            ),
            teacher=source_teacher,
            text_features=L.features,
            student_backbone=L.backbone.format(role="student"),
        output:
            cache=temp(L.teacher_cache),
        log:
            L.log("teacher_cache", "{task}_{dataset}_{setting}_seed{seed}"),
        threads: job_threads(cfg, "teacher_cache") + cfg["runtime"]["loader_workers"]
        resources:
            **job_resources(cfg, "teacher_cache"),
            # Execution matters (they change no cached number): rerun nothing.
            torch_threads=job_threads(cfg, "teacher_cache"),
            loader_workers=cfg["runtime"]["loader_workers"],
            inference_batch=cfg["eval"]["batch_size"],
        params:
            run=lambda wc: as_json(
                ame_grid.teacher_cache_params(cfg, wc.task, wc.dataset, wc.setting)
            ),
            code=code("teacher-cache"),
        shell:
            "ame teacher-cache --threads {resources.torch_threads} --params {params.run:q} --seed {wildcards.seed}"
            " --split {input.split:q} --shots {input.shots:q} --teacher {input.teacher:q}"
            " --text-features {input.text_features:q} --student-backbone {input.student_backbone:q}"
            " --inference-batch {resources.inference_batch} --workers {resources.loader_workers}"
            " --out {output.cache:q} > {log:q} 2>&1"


rule distill:
    input:
        unpack(distill_inputs),
    output:
        distill_outputs(),
    log:
        L.log("distill", "{cell}" + ("" if SEED_GROUPS else "_seed{seed}")),
    wildcard_constraints:
        cell=one_of(DISTILL),
    # The job's cores: its training threads and its data-loading processes.
    threads: job_threads(cfg, "distill") + cfg["runtime"]["loader_workers"]
    resources:
        **job_resources(cfg, "distill"),
        # When to save resume state, when to warn of a collapsed H(M), how many processes load data
        # and how many images stay decoded are execution matters, like threads: they rerun nothing.
        checkpoint_minutes=cfg["runtime"]["checkpoint_minutes"],
        collapse_warning_percent=cfg["runtime"]["collapse_warning_percent"],
        torch_threads=job_threads(cfg, "distill"),
        loader_workers=cfg["runtime"]["loader_workers"],
        decoded_cache_mb=cfg["runtime"]["decoded_cache_mb"],
    params:
        spec=lambda wc: as_json(DISTILL[wc.cell][0].job_params()),
        code=lambda wc: run_code("distill", DISTILL[wc.cell][0].method),
        seeds=lambda wc: " ".join(str(s.seed) for s in job_specs(wc)),
        out_dirs=lambda wc: [L.run_dir(s) for s in job_specs(wc)],
        scratch_dirs=lambda wc: [L.scratch_dir(s) for s in job_specs(wc)],
        cache=lambda wc, input: (
            ["--teacher-cache", *input.teacher_cache] if USE_TEACHER_CACHE else []
        ),
    shell:
        "ame distill --threads {resources.torch_threads} --spec {params.spec:q} --seeds {params.seeds}"
        " --split {input.split:q} --shots {input.shots:q} --student-backbone {input.student_backbone:q}"
        " --teacher {input.teacher:q} --text-features {input.text_features:q} {params.cache:q}"
        " --out-dirs {params.out_dirs:q} --scratch-dirs {params.scratch_dirs:q}"
        " --save-minutes {resources.checkpoint_minutes}"
        " --warn-collapse-percent {resources.collapse_warning_percent} --workers {resources.loader_workers}"
        " --decoded-cache-mb {resources.decoded_cache_mb} > {log:q} 2>&1"


# A cross-dataset student scored by `ame evaluate` from its run folder alone (student.json), as a
# user would score it on any dataset; Table 2 reads this evaluation.
rule evaluate:
    input:
        student=f"{L.run}/student.json",
        weights=f"{L.run}/student.safetensors",
        split=lambda wc: L.split.format(dataset=XD_TRAINED[wc.cell][0].dataset),
    output:
        f"{L.run}/evaluation.json",
    log:
        L.log("evaluate", "{cell}_seed{seed}"),
    wildcard_constraints:
        cell=one_of(XD_TRAINED),
    threads: job_threads(cfg, "evaluate")
    resources:
        **job_resources(cfg, "evaluate"),
    params:
        run=lambda wc, input: str(Path(input.student).parent),
        device=cfg["runtime"]["device"],
        batch_size=cfg["eval"]["batch_size"],
        code=code("evaluate"),
    shell:
        "ame evaluate --threads {threads} --student {params.run:q} --split {input.split:q} --classes all"
        " --batch-size {params.batch_size} --device {params.device} --out {output:q} > {log:q} 2>&1"


rule zeroshot:
    input:
        split=lambda wc: L.split.format(dataset=ZEROSHOT[wc.cell][0].dataset),
        student_backbone=L.backbone.format(role="student"),
    output:
        [f"{L.run}/{name}" for name in ZEROSHOT_FILES],
    log:
        L.log("zeroshot", "{cell}_seed{seed}"),
    wildcard_constraints:
        cell=one_of(ZEROSHOT),
    threads: job_threads(cfg, "zeroshot")
    resources:
        **job_resources(cfg, "zeroshot"),
    params:
        spec=lambda wc: as_json(ZEROSHOT[wc.cell][0].to_dict()),
        code=run_code("zeroshot", "zeroshot"),
        out_dir=lambda wc, output: str(Path(output[0]).parent),
    shell:
        "ame zeroshot --threads {threads} --spec {params.spec:q} --student-backbone {input.student_backbone:q}"
        " --split {input.split:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
