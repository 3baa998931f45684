"""nox sessions: one per dataset (``nox -s cifar10``), plus ``tests``, ``bench``, ``gpu``, ``lint`` and ``docs``.

Sessions run in the current environment (``venv_backend="none"``): the package and its multi-GB
torch/CUDA wheels are installed once (see README), and nox only orchestrates.  A bare ``nox`` runs
lint and tests, never an experiment.  Arguments after ``--`` go to ``adagrow suite``:

    nox -s mnist -- --profile smoke --data-dir ../shared/data
"""

import sys

import nox

nox.options.sessions = ["lint", "tests"]
# The interpreter nox runs under: the environment the package was installed into.
PY = sys.executable
nox.options.default_venv_backend = "none"

DATASETS = ("mnist", "cifar10", "cifar100", "svhn", "imagewoof", "imagenette", "tinyimagenet", "miniimagenet",
            "imdb", "sst2")


def _suite_session(name: str):
    def session(s: nox.Session) -> None:
        s.run(PY, "-m", "adagrow", "suite", name, *s.posargs, external=True)

    session.__doc__ = f"Run the {name} suite (fixed references and AdaGrow; see suites/)."
    session.__name__ = name
    return session


for _name in DATASETS:
    nox.session(name=_name, tags=["suite", "text" if _name in ("imdb", "sst2") else "vision"])(_suite_session(_name))


# The main job (README): a fixed reference beside a model grown from the empty seed, on the real MNIST, in a few
# minutes on a 2-core CPU.  `nox -s mnist -- --profile smoke` adds the growing baselines (about 15 minutes).
QUICKSTART = ("mnist", "--profile", "smoke", "--only", "fixed-resnet18-thesis,adagrow-vgg-3b")


@nox.session
def quickstart(s: nox.Session) -> None:
    """The main job: the MNIST suite's fixed ResNet-18 and AdaGrow-VGG (smoke profile); options after -- are added."""
    s.run(PY, "-m", "adagrow", "suite", *QUICKSTART, *s.posargs, external=True)


@nox.session
def tests(s: nox.Session) -> None:
    """Fast CPU tests (the same command CI runs)."""
    s.env["WANDB_MODE"] = "disabled"
    s.run(PY, "-m", "pytest", "-q", *s.posargs, external=True)


# Training throughput in a setting small enough for a CPU: VGG 1-2-2 grown with three branches per unit
# against its plain architecture (step time and arithmetic ratios, branch by branch and batched).
BENCH_TRAIN = ("--dataset", "cifar10", "--model", "vgg:1-2-2", "--branches", "3", "--batch", "32", "--steps", "5",
               "--warmup", "2", "--output", "runs/bench-train.jsonl")


@nox.session
def bench(s: nox.Session) -> None:
    """pytest-benchmark benchmarks (data loader, runner overhead, growth, quantization), then `adagrow bench --train`."""
    s.env["WANDB_MODE"] = "disabled"
    s.run(PY, "-m", "pytest", "-q", "--benchmark-enable", "--benchmark-only", "-p", "no:cacheprovider",
          "tests/bench_*.py", "--benchmark-autosave", *s.posargs, external=True)
    s.run(PY, "-m", "adagrow", "bench", "--train", *BENCH_TRAIN, external=True)


@nox.session
def gpu(s: nox.Session) -> None:
    """The one prepared GPU check (adagrow/engine/gpu_check.py): AdaGrow ResNet 4 blocks on CIFAR-10 for 100 epochs,
    the fixed ResNet-18 in the budget left, latencies; ``-- --pieces DIR``, ``-- --budget-min N``, ``-- --tiny`` (CPU)."""
    s.env["WANDB_MODE"] = "disabled"
    s.run(PY, "-m", "adagrow.engine.gpu_check", *s.posargs, external=True)


@nox.session
def lint(s: nox.Session) -> None:
    """ruff."""
    s.run(PY, "-m", "ruff", "check", "adagrow", "baselines", "suites", "reports", "tests", "noxfile.py", external=True)


@nox.session
def docs(s: nox.Session) -> None:
    """Build the documentation site (mkdocs.yml -> site/) with warnings as errors; ``-- serve`` would not:
    run ``mkdocs serve`` yourself to browse it while editing."""
    s.env["NO_MKDOCS_2_WARNING"] = "1"  # Material's banner about its successor: not a problem of this site
    s.run(PY, "-m", "mkdocs", "build", "--strict", "--site-dir", "site", *s.posargs, external=True)


@nox.session(venv_backend="venv", reuse_venv=False)
def lock(s: nox.Session) -> None:
    """Refresh ``constraints.txt`` (the lock): resolve ``.[dev,deploy,cluster,docs]`` afresh in a new venv and pin every package.

    pip's resolver picks torch and torchvision together; the exact versions it chose become the lock that CI and
    the README's install command use (``pip install -c constraints.txt ...``).  Review the diff before committing.
    """
    s.install("--upgrade", "pip")
    s.install("-e", ".[dev,deploy,cluster,docs]")
    frozen = s.run("python", "-m", "pip", "freeze", "--exclude-editable", silent=True)
    extras = '".[dev,deploy,cluster,docs]"'
    header = (f"# The lock: exact versions of everything `pip install -e {extras}` resolves, used as pip constraints\n"
              f"# (`pip install -c constraints.txt -e {extras}`).  Refresh with `nox -s lock`; never edit by hand.\n")
    with open("constraints.txt", "w", encoding="utf-8") as f:
        f.write(header + "".join(line + "\n" for line in sorted(frozen.splitlines(), key=str.lower)
                                 if line and not line.startswith("#")))
    s.log("constraints.txt refreshed; review `git diff constraints.txt`")
