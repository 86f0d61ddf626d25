"""A private single-node Slurm for ``make test-slurm``: Debian's slurm-wlm, for real.

munged, slurmctld and slurmd run with a configuration, key, state and logs in one temporary
directory, inside new network, PID and mount namespaces (``unshare``). The network namespace
holds only the loopback interface, so nothing listens on any other address (slurmctld binds
to every address of its namespace; ``CommunicationParameters=NoInAddrAny`` covers only the
other daemons). The PID namespace is what makes clean-up certain: when its first process
dies the kernel kills every process in it, daemons, batch scripts and MPI ranks included,
and that first process dies with the test run (``PR_SET_PDEATHSIG`` on ``unshare``,
``--kill-child`` on its child). Client commands (sbatch, sacct, ...) enter the namespaces
with ``nsenter``. Needs root: slurmd starts jobs, and namespaces need CAP_SYS_ADMIN.
"""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "sacct", "squeue", "scontrol", "scancel", "sinfo", "srun")
NODE_CPUS = 16  # more than the machine has (SlurmdParameters=config_overrides): 9-rank jobs

# PID 1 of the namespaces: loopback up, a private /dev/shm, then reap orphans until
# killed. 127.0.0.2 is there because glibc's AI_ADDRCONFIG counts no IPv4 address but
# 127.0.0.1 as configured, and Slurm resolves its addresses with it (127.0.0.2 is loopback
# too). /dev/shm: MPICH names its segment after the PMI job name, "<job>.<step>" under
# srun, the same in every fresh cluster; a segment a killed rank left behind would be
# joined by the next job's ranks (which then hang in MPI_Init). The tmpfs dies with us.
INIT = """
import os, subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm"], check=True)
print("ready", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""

CONF = """\
ClusterName=mpigc-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
CommunicationParameters=NoInAddrAny
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# sacct --completion reads this file: no slurmdbd needed
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
KillWait=5
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def missing():
    """Why this machine cannot run the private Slurm (a line), or None."""
    if os.geteuid() != 0:
        return "needs root (slurmd launches the jobs; unshare needs CAP_SYS_ADMIN)"
    absent = [c for c in DAEMONS + CLIENTS + ("unshare", "nsenter", "ip") if not shutil.which(c)]
    if absent:
        return (f"{', '.join(absent)} not found: apt-get install slurm-wlm munge "
                f"(and util-linux, iproute2)")
    return None


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Cluster:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent; kills everything)."""

    def __init__(self, root):
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.holder = None
        self.init_pid = None
        self.pid_ns = None

    # -- life cycle --------------------------------------------------------------------
    def start(self, timeout=60):
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.conf.write_text(CONF.format(root=self.root, cpus=NODE_CPUS))
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child",
             sys.executable, "-c", INIT],
            stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        if self.holder.stdout.readline().strip() != "ready":
            raise RuntimeError(f"unshare could not make the namespaces "
                               f"(exit status {self.holder.wait()})")
        self.init_pid = self._child_of(self.holder.pid)
        self.pid_ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        self.run(["munged", f"--key-file={key}", f"--socket={self.root}/munge.socket",
                  f"--pid-file={self.root}/munged.pid", f"--log-file={self.root}/log/munged.log",
                  f"--seed-file={self.root}/munged.seed"], check=True)
        self.run(["slurmctld", "-i"], check=True)
        self.run(["slurmd", "-N", "localhost"], check=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run(["sinfo", "-h", "-n", "localhost", "-o", "%T"]).stdout.strip()
            if state == "idle":
                return self
            time.sleep(0.5)
        raise RuntimeError(f"node not idle after {timeout} s (state {state!r})\n" + self.logs())

    def stop(self):
        """Kill every process of the namespaces; returns those still alive after 30 s."""
        if self.holder is None:
            return []
        self.holder.kill()  # --kill-child: the namespaces' PID 1 dies, and all in them
        self.holder.wait()
        deadline = time.monotonic() + 30
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.holder = None
        return left

    def processes(self):
        """PIDs (as this machine sees them) of the processes inside the namespaces."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/pid") == self.pid_ns:
                        found.append(int(entry))
                except OSError:
                    pass
        return found

    @staticmethod
    def _child_of(pid, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in os.listdir("/proc"):
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    return int(entry)
            time.sleep(0.05)
        raise RuntimeError(f"unshare (pid {pid}) has no child")

    # -- commands inside -----------------------------------------------------------------
    def command(self, cmd, cwd=None):
        """``cmd`` entering the namespaces, in ``cwd`` (default: this process's)."""
        return ["nsenter", "-t", str(self.init_pid), "--net", "--pid", "--mount",
                f"--wd={cwd or os.getcwd()}", "--"] + [str(c) for c in cmd]

    def run(self, cmd, env=None, cwd=None, check=False, timeout=60):
        full_env = dict(os.environ, SLURM_CONF=str(self.conf), **(env or {}))
        res = subprocess.run(self.command(cmd, cwd), env=full_env, capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))}: exit status {res.returncode}\n"
                               f"{res.stdout}{res.stderr}\n" + self.logs())
        return res

    def interfaces(self):
        """The network interfaces inside (only ``lo``)."""
        out = self.run(["ip", "-o", "link"], check=True).stdout
        return [line.split(":")[1].strip() for line in out.splitlines()]

    # -- jobs ----------------------------------------------------------------------------
    def submit(self, args, env=None, cwd=None):
        """``sbatch --parsable ARGS``; returns the job id."""
        res = self.run(["sbatch", "--parsable", *args], env=env, cwd=cwd, check=True)
        return res.stdout.strip().split(";")[0]

    def state(self, job):
        """``(State, ExitCode)`` of a finished job from ``sacct --completion``, or None."""
        out = self.run(["sacct", "--completion", "-n", "-P", "-j", job,
                        "-o", "JobID,State,ExitCode"]).stdout
        for line in out.splitlines():
            jobid, state, code = line.split("|")
            if jobid == job:
                return state, code
        return None

    def wait(self, job, timeout):
        """Wait until ``job`` has finished; returns :meth:`state`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (done := self.state(job)) is not None:
                return done
            time.sleep(0.5)
        self.run(["scancel", job])
        raise AssertionError(f"job {job} still running after {timeout} s\n" + self.logs())

    def job_state(self, job):
        """The job's state as slurmctld has it now (RUNNING, COMPLETED, ...)."""
        out = self.run(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"]).stdout
        return out.strip()

    def task_pid(self, job, rank, timeout=60):
        """PID (as this machine sees it) of MPI rank ``rank``'s mpigc process in ``job``."""
        want = {f"SLURM_JOB_ID={job}".encode(), f"SLURM_PROCID={rank}".encode(),
                b"SLURM_STEP_ID=0"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in self.processes():
                try:
                    env = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                argv = cmd.split(b"\0")
                if want <= env and os.path.basename(argv[0]) != b"srun" and b"mpigc" in cmd:
                    return pid
            time.sleep(0.1)
        raise AssertionError(f"rank {rank} of job {job} not found")

    def logs(self):
        """The daemons' logs, ends only (for assertion messages)."""
        parts = []
        for log in sorted((self.root / "log").glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text()[-3000:]}")
        return "\n".join(parts)
