rule prepare_dataset:
    output:
        split=L.split,
    log:
        L.log("prepare", "{dataset}"),
    threads: job_threads(cfg, "prepare_dataset")
    resources:
        **job_resources(cfg, "prepare_dataset"),
    params:
        root=lambda wc, output: str(Path(output.split).parent.parent),
        # A custom dataset's definition and files are part of its job: editing either reruns it.
        custom=lambda wc: as_json(cfg["custom_datasets"].get(wc.dataset)),
        files=lambda wc: custom_state(wc.dataset),
        code=code("prepare"),
    shell:
        "ame prepare --dataset {wildcards.dataset} --data-root {params.root:q}"
        " --custom {params.custom:q} > {log:q} 2>&1"


rule sample_shots:
    input:
        split=L.split,
    output:
        shots=L.shots,
    log:
        L.log("shots", "{dataset}_{shots}_seed{seed}"),
    threads: job_threads(cfg, "sample_shots")
    resources:
        **job_resources(cfg, "sample_shots"),
    params:
        code=code("shots"),
    shell:
        "ame shots --split {input.split:q} --shots {wildcards.shots} --seed {wildcards.seed}"
        " --out {output.shots:q} > {log:q} 2>&1"
