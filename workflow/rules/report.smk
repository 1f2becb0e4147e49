rule report:
    input:
        all_run_outputs(),
    output:
        table1=f"{RES}/tables/table1.csv",
        table1_md=f"{RES}/tables/table1.md",
        table2=f"{RES}/tables/table2.csv",
        table2_md=f"{RES}/tables/table2.md",
        summary=f"{RES}/metrics/summary.json",
        shots=f"{RES}/figures/accuracy_vs_shots.png",
    params:
        selection=cfg["eval"]["selection"],
        tsne=cfg["datasets"][0],
    log:
        f"{LOGS}/report.log",
    threads: 1
    shell:
        "ame report --runs-dir {RUNS} --tables-dir {RES}/tables --figures-dir {RES}/figures"
        " --preset {PRESET} --selection {params.selection} --tsne-dataset {params.tsne}"
        " > {log} 2>&1 && mv {RES}/tables/metrics_summary.json {output.summary} 2>/dev/null || true"
