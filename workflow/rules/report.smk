rule report:
    input:
        runs=all_run_outputs(),
        checks=teacher_check_outputs(),
    output:
        [L.table(name) for name in REPORT_TABLES],
        [L.metric(name) for name in REPORT_METRICS],
        shots=L.figure("accuracy_vs_shots.png"),
    log:
        L.log("report", "report"),
    threads: 1
    params:
        # Exactly the runs the current preset plans; the report reads each one's params.json.
        runs=report_run_dirs(),
        selection=cfg["eval"]["selection"],
        tsne=cfg["datasets"][0],
        tables=L.tables,
        figures=L.figures,
        metrics=L.metrics,
        preset=cfg["preset"],
    shell:
        "ame report --runs {params.runs:q} --tables-dir {params.tables:q} --figures-dir {params.figures:q}"
        " --metrics-dir {params.metrics:q} --preset {params.preset} --selection {params.selection}"
        " --tsne-dataset {params.tsne} --teacher-checks {input.checks:q} > {log:q} 2>&1"


rule ablation:
    input:
        [f"{d}/metrics.json" for d in ablation_run_dirs()],
    output:
        [L.table(name) for name in ABLATION_TABLES],
    log:
        L.log("report", "ablation"),
    params:
        runs=ablation_run_dirs(),
    shell:
        "ame ablation-report --runs {params.runs:q} --out-csv {output[0]:q}"
        " --out-md {output[1]:q} > {log:q} 2>&1"
