"""A throw-away single-node SLURM cluster on 127.0.0.1 for tests: munged, slurmctld and slurmd
with their state, logs and munge key in a temporary folder, no accounting database.

The configuration must sit at SLURM's default path (/etc/slurm/slurm.conf): the job step that
Snakemake's SLURM plugin runs inside each job drops SLURM_* variables, SLURM_CONF included. It is
written only where no configuration exists (a real one is never touched) and removed on exit,
because a left-over one makes every later SLURM client, and Snakemake's SLURM plugin, which asks
the cluster at import, wait on a controller that no longer runs. Debian packages: `slurm-wlm`,
`munge` (`make system-deps` installs them, as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")
PARTITION = "ame-test"  # not the cluster's default partition: jobs run only if it is passed on
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


def missing() -> str | None:
    """Why a cluster cannot be started here (None when it can)."""
    absent = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if absent:
        return f"SLURM/munge binaries missing ({', '.join(absent)}): run `make system-deps` as root"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs"
    if SYSTEM_CONF.exists():
        return f"{SYSTEM_CONF} exists (a real cluster's configuration is never replaced)"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("MemTotal not found in /proc/meminfo")


def _config(root: Path, host: str) -> str:
    ports = (_free_port(), _free_port())
    return "\n".join([
        "ClusterName=ametest",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root}/munge.sock",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={root}/state",
        f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/slurmctld.log",
        f"SlurmdLogFile={root}/slurmd.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "MinJobAge=3600",  # finished jobs stay visible to squeue (no sacct without accounting)
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={int(_mem_mb() * 0.8)} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={host} Default=NO MaxTime=INFINITE State=UP",
        "",
    ])


def _stop(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def single_node_slurm(root: Path):
    """Start a single-node cluster configured under `root`; yields the environment (SLURM_CONF)
    that SLURM clients need. On exit: cancels every job, stops the daemons, removes `root` and the
    configuration it wrote."""
    reason = missing()
    if reason:
        raise RuntimeError(f"cannot start a test SLURM cluster: {reason}")
    root.mkdir(parents=True)
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o600)
    host = socket.gethostname().split(".")[0]
    conf = SYSTEM_CONF
    text = _config(root, host)
    conf.parent.mkdir(parents=True, exist_ok=True)
    with open(conf, "x") as f:  # never over an existing configuration
        f.write(text)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        subprocess.run([_binary("munged"), f"--key-file={key}", f"--socket={root}/munge.sock",
                        f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log",
                        f"--seed-file={root}/munge.seed", "--force"], check=True, env=env, timeout=30)
        subprocess.run([_binary("slurmctld"), "-c"], check=True, env=env, timeout=30)
        subprocess.run([_binary("slurmd")], check=True, env=env, timeout=30)
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            proc = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True,
                                  timeout=30)
            state = proc.stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            logs = "\n".join(p.read_text()[-2000:] for p in root.glob("*.log"))
            raise RuntimeError(f"the test cluster's node did not become idle (state {state!r}):\n{logs}")
        yield env
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["scancel", "--full", "--partition", PARTITION], env=env, timeout=30)
        for daemon in ("slurmd", "slurmctld", "munged"):
            _stop(root / f"{daemon}.pid")
        with contextlib.suppress(FileNotFoundError):
            if conf.read_text() == text:
                conf.unlink()
        shutil.rmtree(root, ignore_errors=True)
