"""Exceptions of the tracker package.

Every error a user can cause (a missing or unreadable file, a bad argument, an
output that cannot be written) is raised as one of these, with a message that
names the file, so the command-line tools can print it and exit without a
traceback.
"""


class TrackerError(Exception):
    """Base class of the errors the tracker reports to users."""


class InputError(TrackerError):
    """An input file (video, image, weights, configuration) is missing or unusable."""


class OutputError(TrackerError):
    """An output file cannot be created or written."""


class UsageError(TrackerError):
    """A command-line argument is missing or malformed (argparse's message, one line)."""
