# AME reproduction pipeline. The preset (config/<preset>.yaml) holds the grid and every
# hyper-parameter; it is validated by `ame` before any job runs. See docs/architecture.md.
from ame.config import load_preset


configfile: "config/config.yaml"


PRESET_FILE = f"config/{config['preset']}.yaml"
cfg = load_preset(PRESET_FILE)


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
