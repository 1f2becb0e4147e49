rule report:
    input:
        all_run_outputs(),
        checks=teacher_check_outputs(),
    output:
        table1=f"{RES}/tables/table1.csv",
        table1_md=f"{RES}/tables/table1.md",
        table2=f"{RES}/tables/table2.csv",
        table2_md=f"{RES}/tables/table2.md",
        summary=f"{RES}/metrics/summary.json",
        runs=f"{RES}/metrics/runs.json",
        shots=f"{RES}/figures/accuracy_vs_shots.png",
        teacher_check=f"{RES}/tables/teacher_check.csv",
        teacher_check_md=f"{RES}/tables/teacher_check.md",
    log:
        f"{LOGS}/report.log",
    threads: 1
    params:
        selection=cfg["eval"]["selection"],
        tsne=cfg["datasets"][0],
        runs=RUNS,
        preset=PRESET,
        tables=lambda wc, output: Path(output.table1).parent,
        figures=lambda wc, output: Path(output.shots).parent,
        metrics=lambda wc, output: Path(output.summary).parent,
    shell:
        "ame report --runs-dir {params.runs} --tables-dir {params.tables} --figures-dir {params.figures}"
        " --metrics-dir {params.metrics} --preset {params.preset} --selection {params.selection}"
        " --tsne-dataset {params.tsne} --teacher-checks {input.checks} > {log} 2>&1"


rule ablation:
    input:
        ablation_outputs(),
    output:
        table=f"{RES}/tables/ablation.csv",
        table_md=f"{RES}/tables/ablation.md",
    log:
        f"{LOGS}/ablation_report.log",
    params:
        runs=ABLATION,
    shell:
        "ame ablation-report --runs-dir {params.runs} --out-csv {output.table}"
        " --out-md {output.table_md} > {log} 2>&1"
