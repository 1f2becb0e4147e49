rule report:
    input:
        runs=all_run_outputs(),
        evaluations=evaluation_outputs(),
        checks=teacher_check_outputs(),
    output:
        tables=report_tables(),
        readme=L.readme,
        metrics=[L.metric(name) for name in REPORT_METRICS],
        # Which figures and curve files exist follows from the grid (ame.report.plan).
        figures=report_figures(),
        curves=report_curves(),
    log:
        L.log("report", "report"),
    threads: job_threads(cfg, "report")
    resources:
        **job_resources(cfg, "report"),
    params:
        # Exactly the runs the current preset plans; the report reads each one's params.json.
        runs=report_run_dirs(),
        selection=cfg["eval"]["selection"],
        tables=lambda wc, output: str(Path(output.tables[0]).parent),
        figures=lambda wc, output: str(Path(output.figures[0]).parent),
        metrics=lambda wc, output: str(Path(output.metrics[0]).parent),
        preset=cfg["preset"],
        code=code("report"),
    shell:
        "ame report --runs {params.runs:q} --tables-dir {params.tables:q} --figures-dir {params.figures:q}"
        " --metrics-dir {params.metrics:q} --preset {params.preset} --selection {params.selection}"
        " --readme {output.readme:q} --teacher-checks {input.checks:q} > {log:q} 2>&1"


rule ablation:
    input:
        [f"{d}/metrics.json" for d in ablation_run_dirs()],
    output:
        csv=L.ablation_table(ABLATION_TABLES[0]),
        md=L.ablation_table(ABLATION_TABLES[1]),
        caption=L.ablation_table(ABLATION_TABLES[2]),
        # HM and final H(M) vs omega, PNG and PDF, beside the tables (ame.report.ablation).
        figures=ablation_figures(),
    log:
        L.log("report", "ablation"),
    threads: job_threads(cfg, "ablation")
    resources:
        **job_resources(cfg, "ablation"),
    params:
        runs=ablation_run_dirs(),
        code=code("ablation-report"),
    shell:
        "ame ablation-report --runs {params.runs:q} --out-csv {output.csv:q}"
        " --out-md {output.md:q} > {log:q} 2>&1"
