# AME reproduction pipeline. config/config.yaml names the active preset (config/<preset>.yaml),
# which holds the grid and every hyper-parameter; `--config KEY=VALUE` and `--configfile FILE`
# override its keys. `ame.spec` validates the result before any job runs. See docs/architecture.md.
from ame.spec import load_active

# No `configfile:` directive: ame reads config/config.yaml itself (clear errors for a broken one)
# and merges Snakemake's `config`, which then holds exactly the command line's overrides.
cfg, PRESET_FILE = load_active(config)


# `snakemake --report report.html`: this text opens the HTML report; each result has its caption.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/distill.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.report.output,


# Stage targets (DVC's stages call these): data, models, runs.
rule data:
    input:
        all_data_outputs(),


rule models:
    input:
        all_model_outputs(),


rule runs:
    input:
        all_run_outputs(),
        evaluation_outputs(),
