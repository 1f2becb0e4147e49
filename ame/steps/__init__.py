"""The pipeline's steps: each `ame <step>` that composes library calls has its module here.

A step reads its inputs, calls the library (`ame.data`, `ame.models`, `ame.training`, `ame.evaluate`,
`ame.report`, ...) and writes its outputs; the library never imports a step. Steps whose work is a
single library call have none: `ame prepare` is `ame.data.prepare_dataset`, `ame shots` is
`ame.data.write_shots`, `ame report` is `ame.report.build_report`, `ame ablation-report` is
`ame.report.ablation.write_ablation`.
"""
