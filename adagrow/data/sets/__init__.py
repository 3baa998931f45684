"""The dataset definitions: one module per dataset (or per family of alike datasets), each registering its
``DatasetSpec`` in ``adagrow.data.registry.DATASETS`` when imported.  Every module of this package is
imported (but helpers named ``_*``), so adding a dataset is adding one file here (docs/datasets.md,
"Adding a dataset"); the thesis' ten come first, in its order (Table 3-17), which listings keep."""

import importlib
import pkgutil

_THESIS_ORDER = ("mnist", "cifar", "svhn", "imagewoof", "imagenette", "tinyimagenet", "miniimagenet", "imdb", "sst2")
_found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
for _module in [m for m in _THESIS_ORDER if m in _found] + sorted(_found - set(_THESIS_ORDER)):
    importlib.import_module(f"{__name__}.{_module}")
