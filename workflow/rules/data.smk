rule prepare_dataset:
    output:
        split=SPLIT,
    log:
        f"{LOGS}/prepare/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2000,
    params:
        root=DATA,
        # Custom datasets are defined in the preset; the spec is a param so that editing it reruns.
        preset=lambda wc: custom_prepare_args(wc.dataset),
        custom=lambda wc: as_json(cfg["custom_datasets"].get(wc.dataset)),
    shell:
        "ame prepare --dataset {wildcards.dataset} --data-root {params.root} {params.preset}"
        " > {log} 2>&1"


rule sample_shots:
    input:
        split=SPLIT,
    output:
        shots=SHOTS,
    log:
        f"{LOGS}/shots/{{dataset}}_{{shots}}_seed{{seed}}.log",
    threads: 1
    shell:
        "ame shots --split {input.split} --shots {wildcards.shots} --seed {wildcards.seed}"
        " --out {output.shots} > {log} 2>&1"
