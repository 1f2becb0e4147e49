"""Live training curves (`ame.training.live`): DVCLive's files hold history.csv's series."""

import json


def test_training_curves_are_logged_live_through_dvclive_beside_the_resume_state(distilled_run):
    out, _, _ = distilled_run
    live = out.parent / "scratch" / "dvclive"
    history = (out / "history.csv").read_text().splitlines()
    header, rows = history[0].split(","), [dict(zip(history[0].split(","), r.split(","))) for r in history[1:]]
    assert header == ["epoch", "lr", "kd_loss", "rsm_entropy", "total_loss", "base_acc"]
    for name in ("kd_loss", "rsm_entropy", "total_loss", "lr", "base_acc"):
        logged = (live / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()
        assert logged[0] == f"step\t{name}"
        assert [(int(step), float(v)) for step, v in (line.split("\t") for line in logged[1:])] == \
            [(int(r["epoch"]), float(r[name])) for r in rows], name
    assert json.loads((live / "metrics.json").read_text())["step"] == len(rows)
