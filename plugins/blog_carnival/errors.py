"""One exception hierarchy. Expected per-feed faults are values, not exceptions;
these are for the host's own mistakes, which stop the build."""


class CarnivalError(Exception):
    """Base class of every error the carnival raises on purpose."""

    exitcode = 1


class ConfigError(CarnivalError):
    """One or more carnival files or settings are wrong; the message lists each problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            f"carnival: configuration has {len(self.problems)} problem(s):\n  - "
            + "\n  - ".join(self.problems)
        )


class StrictModeError(CarnivalError):
    """Raised at the end of a --strict build when any feed failed."""
