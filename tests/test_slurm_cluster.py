"""The SLURM profile against a real (single-node) SLURM controller: a reduced miniature runs through
`profiles/slurm` with the cluster's own values given on the command line, never by editing tracked
files, and produces exactly the tables of a local run. Needs root and Debian's slurm-wlm and munge
(`make system-deps`); elsewhere it is skipped with the reason, but under CI=true a skip is a failure."""

import filecmp
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ame.spec import load_preset
from tests.slurm_cluster import PARTITION, SYSTEM_CONF, missing, single_node_slurm
from tests.workspace import reduced_preset, run, tool_env



def _preset() -> dict:
    cfg = reduced_preset()
    cfg.update(seeds=[1])
    cfg["cross_dataset"]["enabled"] = False
    return cfg


@pytest.fixture
def cluster(tmp_path_factory):
    reason = missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the SLURM cluster test must run in CI: {reason}")
        pytest.skip(reason)
    with single_node_slurm(tmp_path_factory.mktemp("slurm") / "cluster") as env:
        yield env


def test_the_slurm_profile_runs_the_dag_on_a_cluster_and_matches_a_local_run(cluster, clone, tmp_path):
    work = clone(_preset())
    run(["snakemake", "--cores", "2", "all"], work)
    local = tmp_path / "local"
    shutil.copytree(work / "results" / "ci" / "tables", local)
    shutil.rmtree(work / "results")
    shutil.rmtree(work / "data")

    env = tool_env(**{k: v for k, v in cluster.items() if k.startswith("SLURM")})
    out = run(["snakemake", "--profile", "profiles/slurm", "--jobs", "2", "all",
               "--default-resources", f"slurm_partition={PARTITION}",
               "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1"],
              work, timeout=1800, env=env)
    # Every job went through SLURM, in the partition given above, with the preset's resources.
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", out)
    jobs = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%k|%P|%m|%l|%C|%b|%T"], env=env,
                          capture_output=True, text=True, timeout=60, check=True).stdout.split()
    by_id = {line.split("|")[0]: line.split("|")[1:] for line in jobs}
    assert submitted and sorted(submitted) == sorted(by_id), (submitted, jobs)
    cfg = load_preset(work / "config" / "ci.yaml")
    rules = set()
    for comment, partition, memory, limit, cpus, gres, state in by_id.values():
        rule = re.match(r"rule_([a-z_]+?)(_wildcards_.*)?$", comment).group(1)
        rules.add(rule)
        want = cfg["runtime"]["resources"][rule]
        assert (partition, memory, state) == (PARTITION, f"{want['mem_mb']}M", "COMPLETED"), (rule, memory)
        assert limit == f"{want['runtime']}:00" and cpus == "1" and gres == "N/A", (rule, limit, cpus, gres)
    assert {"prepare_dataset", "backbone", "teacher", "distill", "zeroshot", "report"} <= rules

    slurm = work / "results" / "ci" / "tables"
    names = sorted(p.name for p in local.iterdir())
    assert names == sorted(p.name for p in slurm.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(local, slurm, names, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)

    # Nothing tracked was edited to get there (only the active preset was chosen).
    status = run(["git", "status", "--porcelain"], work).splitlines()
    assert [line for line in status if not line.startswith("??")] == [" M config/config.yaml"]


def test_the_test_cluster_leaves_no_configuration_behind(tmp_path):
    if missing():
        pytest.skip(missing())
    root = tmp_path / "cluster"
    with single_node_slurm(root) as env:
        assert Path(env["SLURM_CONF"]) == SYSTEM_CONF and SYSTEM_CONF.is_file()
    assert not root.exists() and not SYSTEM_CONF.exists()
