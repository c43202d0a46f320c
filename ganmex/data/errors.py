"""Data errors the CLI shows without a traceback (both are FileNotFoundError, which it catches)."""


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset's files are absent and cannot be downloaded."""


class DataFileError(DatasetNotFoundError):
    """A data file exists but cannot be read (truncated archive, corrupt image); the message names it."""
