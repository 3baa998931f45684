"""fast.ai's ImageFolder format, shared by ImageWoof and Imagenette: ``<folder>{,-320,-160}/{train,val}/<wnid>/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adagrow.data.registry import DatasetSpec


def fastai_layouts(folder: str) -> tuple[tuple[str, ...], ...]:
    """The layouts of ``folder``: full size, then the 320 px and 160 px variants."""
    return ((f"{folder}/train/", f"{folder}/val/"),
            *((f"{folder}-{px}/train/", f"{folder}-{px}/val/") for px in (320, 160)))


def read_fastai(spec: DatasetSpec, data_dir: Path, cache_dir: Path) -> tuple[Any, Any]:
    """(train, val) class folders of the first layout present; val is the test split, as in the thesis."""
    from adagrow.data.folders import ClassFolder

    root = data_dir / Path(spec.present_layout(data_dir)[0]).parent
    return ClassFolder(spec, root / "train"), ClassFolder(spec, root / "val")
