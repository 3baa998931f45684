"""M-NAS (Wang et al., AAAI 2020): meta neural architecture search across tasks, and its MAML baseline.

Run by the dedicated ``adagrow meta`` command (``baselines.mnas.cli``), not by the runner: episodic
meta-learning has no epochs over one dataset (see docs/methods/mnas.md).  One file per job:
``episodes`` (task samplers), ``supernet`` (search space, meta-weights), ``encoder`` (task auto-encoder),
``modulation`` (the task's tailoring of the meta-weights), ``controller`` (task-aware architecture
policy, and the random baseline's uniform draws), ``maml`` (inner loop), ``meta`` (the meta-training
loop, evaluation, checkpoints and record), ``config`` (the run's frozen config).
"""
