"""Experiment suites: which runs make up a dataset's table or a thesis ablation (data, not logic).

A suite is a list of :class:`Entry` — method, model/family, recipe and the method's options.  Every
``nox -s <dataset>`` session runs ``adagrow suite <dataset>``; thesis ablations are suites named after
their table (``table3-3``).

Running a suite (``run_suite``) is resumable: an entry is skipped when the suite's results file
already holds an ``ok`` record of *the same resolved configuration* (not merely the same name: a
record of an older smoke profile is not this entry's result), and an interrupted entry continues from
its checkpoint.  ``--force`` reruns entries anyway (a new record; old ones are kept).  One failing
entry does not end the suite: it is reported, the remaining entries run, and the suite ends with a
summary table and a non-zero status.  Ctrl-C still stops everything.  ``--seeds 0,1,2`` runs every
entry under each seed; ``--executor slurm|ray`` runs the entries × seeds as cluster jobs instead of one
after another here (``suites.executors``), and ``--status`` shows each one's state.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from adagrow.registry import Registry
from suites.outcomes import Outcome, _clip, _done, _pct, expected_seconds, first_line, near_miss
from suites.registry import SUITES, Entry


def _load() -> Registry[list[Entry]]:
    import suites.ablations  # noqa: F401
    import suites.datasets  # noqa: F401
    import suites.growing  # noqa: F401
    import suites.pruning  # noqa: F401
    import suites.second_thesis  # noqa: F401

    return SUITES


def run_config_for(entry: Entry, args: argparse.Namespace, suite: str):
    """The RunConfig of one entry, with the command line's common options applied."""
    from adagrow.config import RunConfig, resolve_recipe
    from adagrow.methods import load_builtin_methods

    method = load_builtin_methods().get(entry.method)
    config_cls, _ = method.resolve(entry.model)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    opts = dict(entry.options)
    if "family" in fields and entry.model:
        opts.setdefault("family", entry.model)
    mcfg = config_cls(**opts)
    recipe = resolve_recipe(entry.method, entry.model, args.recipe or entry.recipe, batch_size=args.batch_size, lr=args.lr,
                            min_lr=args.min_lr, method_config=mcfg)
    return RunConfig(
        dataset=entry.dataset, method=entry.method, model=entry.model, tag=entry.name, recipe=recipe, method_config=mcfg,
        seed=args.seed, profile=args.profile, train_subset=args.train_subset,
        epochs=entry.epochs if args.epochs is None else args.epochs,  # --epochs 0 is refused, never ignored
        data_dir=args.data_dir, download=args.download and not args.no_download, output_dir=args.output,
        suite=suite, device=args.device, amp=not args.no_amp, compile=args.compile, deterministic=args.deterministic,
        threads=args.threads, latency_threads=getattr(args, "latency_threads", 1), wandb=args.wandb,
        wandb_artifacts=getattr(args, "wandb_artifacts", False), tokenizer=getattr(args, "tokenizer", None),
    )


def _select(args: argparse.Namespace) -> list[Entry]:
    from adagrow.errors import AdaGrowError

    entries = _load().get(args.name)
    if args.only:
        # comma-separated parts; an entry is selected when its name contains any of them
        parts = [p.strip() for p in args.only.split(",") if p.strip()]
        selected = [e for e in entries if any(p in e.name for p in parts)]
        if not selected:
            raise AdaGrowError(f"no entry of suite {args.name!r} has {args.only!r} in its name; "
                               f"its entries: {', '.join(e.name for e in entries)}")
        return selected
    if args.profile == "smoke" and not args.all:
        # a smoke run of a suite checks the pipeline end to end, not every row: one run per kind
        return [e for e in entries if e.smoke]
    if args.profile == "reference" and not args.all:
        # the converged CPU selection: the rows of the reference tables a 2-core machine can afford
        return [e for e in entries if e.reference]
    return entries


def run_suite(args: argparse.Namespace) -> int:
    """Run (or list, or show the state of) a suite's entries × seeds; 0 if every one ran or was done before, 1
    if any failed or still waits for another entry's run (``Entry.derive``)."""
    from adagrow.records.store import read_records
    from suites.executors import execute, executor_options, parse_seeds

    suite = args.name if args.suite == "adhoc" else args.suite
    seeds = parse_seeds(args.seeds) if args.seeds else (args.seed,)
    opts = executor_options(args)  # before any work: a missing submitit / Ray is one message
    entries = _select(args)
    jobs, waiting = _jobs(entries, seeds, args, suite)
    for job in jobs:  # the runner's own checks, for every job before any runs (or is listed): one line
        job.cfg.resolved().validate()
    results = Path(args.output) / f"{suite}.jsonl"
    records = read_records(results) if results.exists() else []
    if args.list or args.status:
        print(status_table(suite, jobs, records, results, with_state=args.status, waiting=waiting))
        return 0
    outcomes: dict[str, Outcome] = {}
    passes = 0
    while True:  # a second pass runs the derived jobs whose sources this invocation just produced
        passes += 1
        todo = []
        for job in jobs:
            if job.label in outcomes:
                continue
            done = None if args.force else _done(records, job.cfg)
            if done is not None:
                print(f"{job.label}: done (test {_pct(done.get('test_acc'))}), skipped; --force reruns it", flush=True)
                outcomes[job.label] = Outcome(job.label, "done", done)
            elif (gone := _missing_base(job)) is not None:
                outcomes[job.label] = Outcome(job.label, "waiting", error=gone)
            else:
                todo.append(job)
        if args.force:
            _set_aside_all(todo, outcomes)
        todo = [job for job in todo if job.label not in outcomes]
        for job in todo:  # a forgotten option must not rerun finished work without a word
            if not args.force and (miss := near_miss(records, job.cfg)) is not None:
                print(f"{job.label}: runs again: {miss}", flush=True)
        outcomes.update((o.name, o) for o in execute(todo, opts))
        if not waiting or passes > len(entries):
            break
        jobs_now, waiting = _jobs(entries, seeds, args, suite, only=set(waiting))
        if not jobs_now:
            break
        for job in jobs_now:
            job.cfg.resolved().validate()
        jobs += jobs_now
        records = read_records(results) if results.exists() else []
    outcomes.update((label, Outcome(label, "waiting", error=why)) for label, why in waiting.items())
    order = [job.label for job in jobs] + [label for label in waiting]
    ordered = [outcomes[label] for label in sorted(outcomes, key=order.index)]
    print(summary_table(suite, ordered, results), flush=True)
    return 1 if any(o.status in ("failed", "waiting") for o in ordered) else 0


def _jobs(entries: list[Entry], seeds: tuple[int, ...], args: argparse.Namespace, suite: str,
          only: set[str] | None = None):
    """The jobs (entry × seed) whose configs can be built now, and {label: why} for the derived ones that
    wait for another entry's run.  ``only``: just these labels (the waiting ones of an earlier pass)."""
    from adagrow.records.store import read_records
    from suites.derive import resolve
    from suites.executors import Job, jobs_for

    plain = [e for e in entries if not e.derive]
    jobs = [] if only is not None else jobs_for([(e, run_config_for(e, args, suite)) for e in plain], seeds)
    waiting: dict[str, str] = {}
    cache: dict[str, list] = {}

    def records_of(name: str) -> list:
        if name not in cache:
            path = Path(args.output) / f"{name}.jsonl"
            cache[name] = read_records(path) if path.exists() else []
        return cache[name]

    for entry in (e for e in entries if e.derive):
        for seed in seeds:
            label = entry.name if len(seeds) == 1 else f"{entry.name}/s{seed}"
            if only is not None and label not in only:
                continue
            got = resolve(entry, seed, suite=suite, config_for=lambda e, s: run_config_for(e, args, s),
                          entry_of=_entry_of, records_of=records_of, done=_done)
            if got.cfg is None:
                waiting[label] = got.waiting
            else:
                jobs.append(Job(label, f"{suite}/{entry.name}/s{seed}", got.cfg, sources=got.sources))
    return jobs, waiting


def _entry_of(suite: str, name: str) -> Entry:
    from adagrow.errors import AdaGrowError

    found = [e for e in _load().get(suite) if e.name == name]
    if not found:
        raise AdaGrowError(f"suite {suite!r} has no entry {name!r} (named by another entry's derive)")
    return found[0]


def _missing_base(job) -> str | None:
    from suites.derive import Resolved, missing_checkpoint

    return missing_checkpoint(Resolved(job.cfg, None, job.sources)) if job.sources else None


def _set_aside_all(jobs, outcomes: dict[str, Outcome]) -> None:
    """--force: set aside each job's earlier files, except where a process is running it right now."""
    from suites.executors import is_running

    for job in jobs:
        if is_running(job.run_dir):
            outcomes[job.label] = Outcome(job.label, "running", error="another process is running it; --force left it alone")
        else:
            _set_aside(job.run_dir)


def status_table(suite: str, jobs, records: list[dict[str, Any]], results: Path, *, with_state: bool,
                 waiting: dict[str, str] | None = None) -> str:
    """``--list``: each entry × seed with its method and recipe, and whether it is done; ``--status``:
    done / running / failed / pending with where it runs or why it failed."""
    from adagrow.engine.progress import format_duration
    from suites.executors import job_state

    waiting = waiting or {}
    width = max([len("entry"), *(len(j.label) for j in jobs), *(len(label) for label in waiting)])
    lines = [f"suite {suite}: {len(jobs) + len(waiting)} runs; records in {results}"]
    todo_seconds, unknown, pending = 0.0, 0, 0
    for job in jobs:
        if with_state:
            state, detail = job_state(job, records)
            if state == "pending" and (gone := _missing_base(job)) is not None:
                state, detail = "waiting", gone
            elif state == "pending" and (miss := near_miss(records, job.cfg)) is not None:
                detail = f"{detail}; {miss}" if detail else miss
            if state == "pending":  # how long, from the same entry's finished runs (other seeds or settings)
                seconds = expected_seconds(records, job.cfg)
                todo_seconds += seconds or 0.0
                unknown += seconds is None
                pending += 1
                if seconds is not None:
                    detail = f"~{format_duration(seconds)} (its entry's records)" + (f"; {detail}" if detail else "")
            lines.append(f"  {job.label:<{width}}  {state:<8} {_clip(first_line(detail), 110)}")
        else:
            done = "done" if _done(records, job.cfg) else ""
            lines.append(f"  {job.label:<{width}}  {job.cfg.method:<10} {job.cfg.recipe.name:<20} {done}")
    for label, why in waiting.items():  # derived jobs whose source run has no record yet
        lines.append(f"  {label:<{width}}  {'waiting':<8} {_clip(why, 110)}")
    if with_state and (todo_seconds or unknown):
        if unknown < pending:
            known = f"about {format_duration(todo_seconds)} for the pending runs whose entry has a record"
            lines.append(f"  {known}" + (f", {unknown} more not yet measured" if unknown else "") + " (wall time as recorded)")
        else:
            lines.append(f"  {unknown} pending run{'s' * (unknown != 1)}, none of whose entries has run yet: no time to go by")
    return "\n".join(lines)


def _set_aside(run_dir: Path) -> None:
    """--force: keep an earlier run's files under another name (the runner's :func:`set_aside`)."""
    from adagrow.engine.runner import set_aside

    set_aside(run_dir, log=lambda line: print(f"  {line}", flush=True))


def summary_table(suite: str, outcomes: list[Outcome], results: Path) -> str:
    """The end-of-suite table: one row per entry with its status and, when it has one, its result."""
    from adagrow.engine.progress import format_duration

    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "done", "failed", "running", "waiting")}
    width = max([len("entry"), *(len(o.name) for o in outcomes)])
    running = f", {counts['running']} running elsewhere" if counts["running"] else ""
    running += f", {counts['waiting']} waiting for another run" if counts["waiting"] else ""
    lines = [f"\nsuite {suite}: {counts['ok']} ran, {counts['done']} done before (skipped), {counts['failed']} failed{running}; "
             f"records in {results}",
             f"  {'entry':<{width}}  {'status':<7} {'test acc':>8} {'params':>9} {'MACs':>10} {'time':>7}"]
    for o in outcomes:
        if o.status in ("failed", "running", "waiting"):
            # what a waiting run needs is a command to copy: never clipped
            why = first_line(o.error) if o.status == "waiting" else _clip(first_line(o.error) or o.status, 100)
            lines.append(f"  {o.name:<{width}}  {o.status.upper():<7} {why}")
            continue
        r = o.record or {}
        params = f"{r['params'] / 1e6:.3f}M" if r.get("params") is not None else "-"
        macs = f"{r['macs'] / 1e6:.2f}M" if r.get("macs") is not None else "-"
        secs = format_duration(r["wall_seconds"]) if r.get("wall_seconds") is not None else "-"
        lines.append(f"  {o.name:<{width}}  {o.status:<7} {_pct(r.get('test_acc')):>8} {params:>9} {macs:>10} {secs:>7}")
    return "\n".join(lines)
