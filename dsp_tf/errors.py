"""The one exception type command lines turn into a one-line message and exit code 2."""


class UsageError(ValueError):
    """Bad input from the user: flags, flagfiles, run directories, saved files."""
