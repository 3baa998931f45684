"""Where a suite's runs execute: here, one after another (``local``, the default), as Slurm jobs
through submitit, or as Ray tasks.

The unit of work is a :class:`Job`: one suite entry under one seed.  Every executor runs it with the
same function, :func:`run_job`, so a suite started with one executor can be finished with another: what
a run has done lives in its run directory (``<output>/runs/<run_name>``), never in the executor.
``run_job``

* claims the run directory with an exclusive ``flock`` on ``job.lock``, held while it runs: a second
  process asked to run the same configuration at the same time (a suite submitted again while its jobs
  still run) leaves it alone instead of training it twice, and ``--status`` can tell a running job from
  a dead one (the kernel, or the NFS lock manager, drops the lock of a process that died);
* notes what happens in ``job.json`` (running on which host / Slurm job, failed with which error);
* runs the entry through the one runner, continuing from ``last.pt`` when an earlier attempt left one
  (a preempted or timed-out Slurm job, a crashed Ray worker, a Ctrl-C), and turns a failure into an
  :class:`Outcome`, so one failing entry never stops the others.

Records land through ``append_record`` (an ``flock`` + one ``O_APPEND`` write), so any number of jobs
may finish at once.  submitit and Ray are imported only when their executor is chosen.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adagrow.engine.runlock import LOCK, claim, is_running  # noqa: F401  (re-exported: one lock for runs and jobs)
from adagrow.errors import AdaGrowError
from suites.outcomes import Outcome, _clip, _done, _pct, first_line

NOTE = "job.json"  # in the run directory, beside the lock (adagrow.engine.runlock)
INSTALL = "pip install -e '.[cluster]'"
EXECUTORS = ("local", "slurm", "ray")
# How often a job that keeps hitting its time limit is requeued (preemptions do not count): each
# requeue continues from the last epoch's checkpoint, so long runs finish in several segments.
MAX_TIMEOUTS = 10


@dataclass(frozen=True)
class Job:
    """One suite entry under one seed: what an executor runs."""

    label: str  # the entry's name, plus "/s<seed>" when the suite runs several seeds
    name: str  # suite/entry/seed: the Slurm job name
    cfg: Any  # the entry's RunConfig, seed included
    sources: tuple = ()  # derived options' source runs (suites.derive.Source), for the "base is gone" check

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.output_dir) / "runs" / self.cfg.run_name

    def anywhere(self) -> Job:
        """The same job with absolute data and output paths, for a process started elsewhere (a Slurm
        node, a Ray worker) whose working directory is not ours.  Paths are not part of a run's identity."""
        from adagrow.data import resolve_data_dir

        cfg = dataclasses.replace(self.cfg, output_dir=str(Path(self.cfg.output_dir).resolve()),
                                  data_dir=str(resolve_data_dir(self.cfg.data_dir).resolve()))
        return dataclasses.replace(self, cfg=cfg)


def jobs_for(entries_and_configs: list[tuple[Any, Any]], seeds: tuple[int, ...]) -> list[Job]:
    """One job per entry × seed, entry by entry."""
    jobs = []
    for entry, cfg in entries_and_configs:
        for seed in seeds:
            label = entry.name if len(seeds) == 1 else f"{entry.name}/s{seed}"
            jobs.append(Job(label, f"{cfg.suite}/{entry.name}/s{seed}", dataclasses.replace(cfg, seed=seed)))
    return jobs


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds 0,1,2`` as a tuple; anything else is one clear error."""
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"[0-9]+", p) for p in parts):
        raise AdaGrowError(f"--seeds takes comma-separated non-negative whole numbers, e.g. --seeds 0,1,2 (got {text!r})")
    seeds = tuple(int(p) for p in parts)
    if len(set(seeds)) < len(seeds):
        raise AdaGrowError(f"--seeds {text}: a seed is repeated")
    if max(seeds) >= 2**32:
        raise AdaGrowError(f"--seeds {text}: seeds must be below 2**32")
    return seeds


# ---- the unit of work ----------------------------------------------------------------------------
def run_job(job: Job) -> Outcome:
    """Run one job unless another process is running it; a failure is returned, never raised (but an
    interrupt is: Ctrl-C, SIGTERM, a Slurm requeue)."""
    from adagrow.engine.runner import run

    with claim(job.run_dir) as claimed:
        if not claimed:
            return Outcome(job.label, "running", error=f"another process is running it ({_where(_read_note(job.run_dir))})")
        here = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job": _cluster_job_id(), "started": time.time()}
        _note(job.run_dir, "running", **here)
        resume = (job.run_dir / "last.pt").exists()  # continue an interrupted attempt; else start afresh
        try:
            record = run(dataclasses.replace(job.cfg, resume=resume))
        except AdaGrowError as exc:  # the user can fix it (missing data, NaN loss): one message
            print(f"{job.label} failed: {exc}", file=sys.stderr, flush=True)
            return _failed(job, str(exc), **here)
        except Exception as exc:  # a bug: keep its traceback, but let the other entries run
            traceback.print_exc()
            print(f"{job.label} failed with an unexpected {type(exc).__name__} (traceback above)", file=sys.stderr, flush=True)
            return _failed(job, f"{type(exc).__name__}: {exc}", **here)
        _note(job.run_dir, "ok", **here, ended=time.time())
        return Outcome(job.label, "ok", record)


def _failed(job: Job, error: str, **where: Any) -> Outcome:
    _note(job.run_dir, "failed", error=error, **where)
    return Outcome(job.label, "failed", error=error)


def _note(run_dir: Path, state: str, **details: Any) -> None:
    from adagrow.records.store import atomic_write_text, to_json

    note = {"state": state, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **details}
    atomic_write_text(run_dir / NOTE, to_json(note, indent=1))


def _read_note(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / NOTE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _where(note: dict[str, Any]) -> str:
    where = f"on {note.get('host', '?')}, pid {note.get('pid', '?')}"
    return where + (f", Slurm job {note['slurm_job']}" if note.get("slurm_job") else "") + f", since {note.get('time', '?')}"


def _cluster_job_id() -> str | None:
    """This process's Slurm job as squeue shows it (``<array>_<task>`` for an array task), if any."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def job_state(job: Job, records: list[dict[str, Any]]) -> tuple[str, str]:
    """(done | running | failed | pending, a detail) of one job, for ``adagrow suite --status``."""
    done = _done(records, job.cfg)
    if done is not None:
        return "done", f"test {_pct(done.get('test_acc'))}"
    note = _read_note(job.run_dir)
    if is_running(job.run_dir):
        return "running", _where(note)
    if note.get("state") == "failed":
        return "failed", str(note.get("error") or "")
    checkpoint = (job.run_dir / "last.pt").exists()
    if note.get("state") == "running":  # its process is gone without a word: killed, preempted, Ctrl-C
        return "pending", "interrupted" + ("; continues from its checkpoint" if checkpoint else " before its first checkpoint")
    return "pending", "has a checkpoint to continue from" if checkpoint else ""


# ---- options --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExecutorOptions:
    """How ``--executor`` runs the jobs (the command line's executor options, checked)."""

    kind: str = "local"
    partition: str | None = None  # Slurm partition (None: the cluster's default)
    gpus_per_job: int | None = None  # None: one GPU, none with --device cpu
    cpus_per_job: int | None = None  # None: 4 on Slurm (the data loader's workers), 1 on Ray
    mem_gb: float | None = None  # None: the partition's default
    time_min: int = 720  # Slurm time limit of a job; a run that needs longer is requeued and continues
    address: str | None = None  # Ray: "auto", HOST:PORT, or None to start a Ray instance here
    cluster: str = "slurm"  # submitit's scheduler; "local" runs the same jobs as local subprocesses (tests)
    poll_s: float = 5.0  # how often the Slurm jobs' state is looked at while waiting for them


def add_executor_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where the runs execute (see README: Running on a cluster)")
    g.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local: one after another in this process (default); slurm: a job array through submitit; "
                   "ray: one Ray task per entry × seed")
    g.add_argument("--partition", help="slurm: the partition (default: the cluster's)")
    g.add_argument("--gpus-per-job", type=int, help="slurm / ray: GPUs per run (default: 1, 0 with --device cpu)")
    g.add_argument("--cpus-per-job", type=int, help="slurm / ray: CPUs per run (default: 4 on Slurm, 1 on Ray)")
    g.add_argument("--mem-gb", type=float, help="slurm: memory per job in GB (default: the partition's)")
    g.add_argument("--time-min", type=int,
                   help="slurm: time limit per job in minutes (default 720); a longer run is requeued and continues")
    g.add_argument("--address", help="ray: auto or HOST:PORT of a running Ray cluster (default: start one here)")


def executor_options(args: argparse.Namespace) -> ExecutorOptions:
    """The executor options, checked before any work: one message for anything wrong, including a
    missing submitit / Ray."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ExecutorOptions)
             if getattr(args, f.name, None) is not None}
    opts = ExecutorOptions(**{**given, "kind": args.executor})
    only = {"slurm": ("partition", "mem_gb", "time_min"), "ray": ("address",)}
    misplaced = [f"--{name.replace('_', '-')} applies to --executor {kind}" for kind, names in only.items() for name in names
                 if name in given and opts.kind != kind]
    misplaced += [f"--{name.replace('_', '-')} applies to --executor slurm or ray" for name in ("gpus_per_job", "cpus_per_job")
                  if name in given and opts.kind == "local"]
    bad = [f"--{name.replace('_', '-')} must be at least {low} (got {value})"
           for name, value, low in (("gpus_per_job", opts.gpus_per_job, 0), ("cpus_per_job", opts.cpus_per_job, 1),
                                    ("mem_gb", opts.mem_gb, 0), ("time_min", opts.time_min, 1))
           if value is not None and not value >= low]
    if misplaced or bad:
        raise AdaGrowError("; ".join(misplaced + bad))
    if opts.kind != "local":
        _require("submitit" if opts.kind == "slurm" else "ray", opts.kind)
    if opts.kind == "slurm" and shutil.which("sbatch") is None:
        raise AdaGrowError("--executor slurm: there is no sbatch here; run the command on a machine that submits to "
                           "your Slurm cluster (a login node)")
    return opts


def _require(module: str, executor: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise AdaGrowError(f"--executor {executor} needs {module}, which is not installed: {INSTALL}") from None


# ---- the executors ----------------------------------------------------------------------------------
def execute(jobs: list[Job], opts: ExecutorOptions) -> list[Outcome]:
    """Run the jobs with the chosen executor; one outcome per job, in the jobs' order."""
    if not jobs:
        return []
    if opts.kind == "local":
        return run_local(jobs)
    jobs = [job.anywhere() for job in jobs]
    return run_slurm(jobs, opts) if opts.kind == "slurm" else run_ray(jobs, opts)


def run_local(jobs: list[Job]) -> list[Outcome]:
    outcomes = []
    for i, job in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {job.label}", flush=True)
        outcomes.append(run_job(job))
    return outcomes


class SlurmTask:
    """What each Slurm job runs: one :class:`Job`.

    It follows submitit's ``Checkpointable`` protocol (a callable with a ``checkpoint`` method; duck-typed,
    which is all submitit checks, so this module imports without submitit).  When Slurm warns a job that
    its time limit is near (USR2, 90 s before) or that it is preempted, submitit calls ``checkpoint``,
    requeues the job with what it returns — this task and the same Job — and exits; the requeued job runs
    ``run_job`` again, which continues from the run's ``last.pt`` (the runner checkpoints after every
    epoch, so at most the epoch in progress is repeated).
    """

    def __call__(self, job: Job) -> Outcome:
        _name_slurm_job(job.name)
        print(f"{job.name}: {job.cfg.run_name}", flush=True)
        return run_job(job)

    def checkpoint(self, job: Job):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, job)


def _name_slurm_job(name: str) -> None:
    """Rename this array task after its suite, entry and seed, so that squeue says which run it is (an
    array has one name for all its tasks until they start).  Best effort: a refusal changes nothing else."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if job_id and shutil.which("scontrol"):
        subprocess.run(["scontrol", "update", f"JobId={job_id}", f"JobName={name}"], capture_output=True, timeout=60,
                       check=False)


def run_slurm(jobs: list[Job], opts: ExecutorOptions) -> list[Outcome]:
    """Submit the jobs as one job array and wait for them.  Ctrl-C stops the waiting, not the jobs."""
    submitit = _require("submitit", "slurm")
    output = Path(jobs[0].cfg.output_dir)
    executor = submitit.AutoExecutor(folder=output / "slurm" / "%j", cluster=opts.cluster,
                                     slurm_max_num_timeout=MAX_TIMEOUTS)
    on_cpu = jobs[0].cfg.device == "cpu"
    executor.update_parameters(
        name=f"adagrow-{jobs[0].cfg.suite}", timeout_min=opts.time_min, mem_gb=opts.mem_gb, stderr_to_stdout=True,
        gpus_per_node=opts.gpus_per_job if opts.gpus_per_job is not None else (0 if on_cpu else 1),
        cpus_per_task=opts.cpus_per_job or 4, slurm_partition=opts.partition)
    futures = executor.map_array(SlurmTask(), jobs)
    print(f"submitted {len(jobs)} job(s) to {opts.cluster}; each job's log: {output / 'slurm'}/<job id>/<job id>_0_log.out",
          flush=True)
    for future, job in zip(futures, jobs):
        print(f"  {future.job_id:<14} {job.name}", flush=True)
    return _wait(futures, jobs, opts.poll_s, describe=lambda f: f"Slurm job {f.job_id} (log {f.paths.stdout})",
                 detached=True)


def run_ray(jobs: list[Job], opts: ExecutorOptions) -> list[Outcome]:
    """One Ray task per job: on a Ray cluster (``--address``) or on a Ray instance started here."""
    ray = _require("ray", "ray")
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=opts.address, include_dashboard=False)
    try:
        gpus = opts.gpus_per_job
        if gpus is None:  # one GPU per run on CUDA: asked for, or "auto" on a cluster that has GPUs
            device = jobs[0].cfg.device
            gpus = 1 if device.startswith("cuda") or (device == "auto" and ray.cluster_resources().get("GPU", 0)) else 0
        # max_retries: a task whose worker died (out of memory, a lost node) runs again and resumes
        task = ray.remote(run_job).options(num_gpus=gpus, num_cpus=opts.cpus_per_job or 1, max_retries=3)
        futures = [task.remote(job) for job in jobs]
        print(f"{len(jobs)} run(s) as Ray tasks ({gpus} GPU, {opts.cpus_per_job or 1} CPU each) on "
              f"{ray.cluster_resources().get('CPU', 0):.0f} CPUs / {ray.cluster_resources().get('GPU', 0):.0f} GPUs",
              flush=True)
        return _wait(futures, jobs, 0.0, describe=lambda f: "its Ray task", ready=lambda pending: ray.wait(pending)[0],
                     result=ray.get)
    finally:
        if started_here:
            ray.shutdown()


def _wait(futures: list, jobs: list[Job], poll_s: float, describe, ready=None, result=None,
          detached: bool = False) -> list[Outcome]:
    """Collect the jobs' outcomes as they finish, printing each; a job that ended without one (killed,
    out of memory, cancelled) is a failed outcome, noted in its run directory for ``--status``.
    ``detached`` jobs (Slurm's) outlive this process: Ctrl-C stops the waiting and they count as running."""
    ready = ready or (lambda pending: [f for f in pending if f.done()])
    result = result or (lambda future: future.result())
    outcomes: dict[int, Outcome] = {}
    index = {id(f): i for i, f in enumerate(futures)}
    pending = list(futures)
    try:
        while pending:
            finished = ready(pending)
            for future in finished:
                i = index[id(future)]
                try:
                    outcomes[i] = result(future)
                except Exception as exc:
                    job = jobs[i]
                    last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                    outcomes[i] = _failed(job, f"{describe(future)} ended without a result: {last}")
                print(f"[{len(outcomes)}/{len(jobs)}] {_done_line(outcomes[i])}", flush=True)
            gone = {id(f) for f in finished}
            pending = [f for f in pending if id(f) not in gone]
            if pending and not finished:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        if not detached:
            raise
        print(f"stopped waiting: {len(pending)} job(s) keep running; `adagrow suite ... --status` shows them", flush=True)
        for future in pending:
            i = index[id(future)]
            outcomes[i] = Outcome(jobs[i].label, "running", error=f"{describe(future)} is still running")
    return [outcomes[i] for i in range(len(jobs))]


def _done_line(o: Outcome) -> str:
    if o.status == "ok":
        return f"{o.name}: ok (test {_pct((o.record or {}).get('test_acc'))})"
    return f"{o.name}: {o.status}" + (f" ({_clip(first_line(o.error), 110)})" if first_line(o.error) else "")
