"""A single-node Slurm of its own, from Debian's ``slurm-wlm`` and ``munge``, configured in a temporary directory.

Not a test module. :func:`start_cluster` starts ``munged`` (a fresh key, its socket in the directory),
``slurmctld`` and ``slurmd`` (free ports, state, spool, logs and pid files in the directory, no cgroups:
``proctrack/linuxproc``, ``task/none``) with one node (this machine, 127.0.0.1) in one partition ``debug``, and
waits until ``sinfo`` shows the node idle. Every Slurm command of the caller needs ``SLURM_CONF`` (the ``env``
of the returned object). :func:`why_not` gives the reason it cannot run here, for a skip.

Also a script: ``python tests/slurm_cluster.py DIR`` starts one in DIR and prints the ``export SLURM_CONF=...``
line; ``python tests/slurm_cluster.py --stop DIR`` stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
PARTITION = "debug"

SLURM_CONF = """\
ClusterName=mlpkit-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge/munge.socket
CredType=cred/munge
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={d}/spool/ctld
SlurmdSpoolDir={d}/spool/d
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
KillWait=2
MinJobAge=300
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


def _sbin(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}",) if os.path.exists(p)), None)


def why_not() -> str | None:
    """None if a Slurm can be started here, else the reason (for ``pytest.skip``)."""
    missing = [b for b in BINARIES if _sbin(b) is None]
    if missing:
        return f"Slurm/munge binaries missing ({', '.join(missing)}): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs (this test starts its own single-node Slurm)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    directory: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment for Slurm commands (and for programs that call them, like dask-jobqueue)."""
        return {**os.environ, "SLURM_CONF": str(self.directory / "slurm.conf")}

    def run(self, *cmd: str) -> str:
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        if out.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr}")
        return out.stdout

    def jobs(self, name: str | None = None) -> list[tuple[str, str]]:
        """(job id, state) of the jobs in the queue, optionally only those named ``name``."""
        args = ["squeue", "-h", "-o", "%i %T"] + (["-n", name] if name else [])
        return [tuple(line.split()) for line in self.run(*args).splitlines() if line.strip()]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((self.directory / "log").glob("*.log"))
        )

    def stop(self) -> None:
        with_pids = [("slurmd.pid", "slurmd"), ("slurmctld.pid", "slurmctld"), ("munge/munged.pid", "munged")]
        try:
            subprocess.run(["scancel", "-p", PARTITION], env=self.env, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass
        for pidfile, _ in with_pids:
            path = self.directory / pidfile
            if path.exists():
                try:
                    os.kill(int(path.read_text().split()[0]), signal.SIGTERM)
                except (ValueError, ProcessLookupError):
                    pass
        time.sleep(1)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster(directory: str | os.PathLike | None = None, cpus: int | None = None) -> SlurmCluster:
    """munged + slurmctld + slurmd in ``directory`` (a new temporary one by default); the caller calls ``stop()``."""
    d = Path(directory or tempfile.mkdtemp(prefix="mlpkit-slurm-")).resolve()
    for sub in ("munge", "spool/ctld", "spool/d", "log"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(d / "munge", 0o700)
    key = d / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    cluster = SlurmCluster(d)
    subprocess.run(
        [
            _sbin("munged"),
            "--force",
            f"--key-file={key}",
            f"--socket={d}/munge/munge.socket",
            f"--pid-file={d}/munge/munged.pid",
            f"--log-file={d}/log/munged.log",
            f"--seed-file={d}/munge/seed",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    cpus = cpus or os.cpu_count() or 1
    memory_mb = 1024 * max(1, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30 - 2)
    (d / "slurm.conf").write_text(
        SLURM_CONF.format(
            host=socket.gethostname().split(".")[0],
            d=d,
            ctld_port=_free_port(),
            d_port=_free_port(),
            cpus=cpus,
            memory_mb=memory_mb,
            partition=PARTITION,
        )
    )
    try:
        for daemon in ("slurmctld", "slurmd"):
            started = subprocess.run(
                [_sbin(daemon), "-f", str(d / "slurm.conf")], env=cluster.env, capture_output=True, text=True
            )
            if started.returncode:
                raise RuntimeError(f"{daemon} did not start: {started.stderr}\n{cluster.logs()}")
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], env=cluster.env, capture_output=True, text=True, timeout=30
            )
            if out.returncode == 0 and out.stdout.strip() == "idle":
                return cluster
            time.sleep(0.5)
        raise RuntimeError(f"the node never became idle (sinfo: {out.stdout} {out.stderr})\n{cluster.logs()}")
    except BaseException:
        cluster.stop()
        raise


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--stop":
        SlurmCluster(Path(sys.argv[2]).resolve()).stop()
    elif len(sys.argv) == 2:
        started = start_cluster(sys.argv[1])
        print(f"export SLURM_CONF={started.directory / 'slurm.conf'}")
    else:
        sys.exit(__doc__)
