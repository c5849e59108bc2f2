"""One exception hierarchy. Expected per-feed faults are values, not exceptions; these are for
the host's own mistakes and refusals, which stop a build or a command.

Exit codes follow the host commands' contract: 1 when a command refuses (it says why in one
line), 2 for a usage or configuration error.
"""


class CarnivalError(Exception):
    """Base class of every error the carnival raises on purpose."""

    exitcode = 1


class ConfigError(CarnivalError):
    """One or more carnival files or settings are wrong; the message lists each problem."""

    exitcode = 2

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            f"carnival: configuration has {len(self.problems)} problem(s):\n  - "
            + "\n  - ".join(self.problems)
        )


class UsageError(CarnivalError):
    """A command was asked for something that does not exist or makes no sense."""

    exitcode = 2


class Refused(CarnivalError):
    """A command declined to act (a duplicate submission, a forbidden address, ...)."""

    exitcode = 1


class StrictModeError(CarnivalError):
    """Raised at the end of a --strict build when any feed failed."""
