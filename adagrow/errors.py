"""User-facing errors.

Anything a user can cause (unknown dataset, malformed architecture string, missing or corrupt file,
NaN loss) raises :class:`AdaGrowError` with a message that says what is wrong and what to do.  The
command line catches it and prints the message alone, without a traceback; everything else is a bug
and keeps its traceback.
"""


class AdaGrowError(Exception):
    """An error the user can fix; its message is shown as is."""


class DatasetError(AdaGrowError):
    """A dataset is missing, incomplete or corrupt."""


class ArchitectureError(AdaGrowError):
    """An architecture string or model specification is malformed."""


class TrainingDiverged(AdaGrowError):
    """The loss became NaN or infinite."""
