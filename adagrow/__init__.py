"""AdaGrow Bench: grow task-fitted CNNs and Transformers, and compare them fairly.

Public API (see README):

    model = adagrow.create_model("resnet", "1-2-2-1", num_classes=10)   # a growable model
    deploy = adagrow.fuse(model)                                        # plain, re-parameterised
    adagrow.profile(deploy, (3, 32, 32))                                # {"params": ..., "macs": ...}

The command line is ``adagrow`` (``adagrow.cli``); the runner is ``adagrow.engine.runner.run``.
"""

__version__ = "0.1.0"

__all__ = ["create_model", "fuse", "profile", "__version__"]


def __getattr__(name):
    # Lazy: importing the package must stay cheap (the CLI's --help, nox, W&B-free tests).
    if name in ("create_model", "fuse", "profile"):
        from adagrow import api

        return getattr(api, name)
    raise AttributeError(f"module 'adagrow' has no attribute {name!r}")
