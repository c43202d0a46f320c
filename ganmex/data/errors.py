"""One error type for data that is missing, so the CLI can show it without a traceback."""


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset's files are absent and cannot be downloaded."""
