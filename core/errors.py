"""Errors a user can hit and fix: the CLI prints their message without a traceback."""


class ZenkubeError(Exception):
    """Something the user can fix; the message says what and how."""


class DataValidationError(ZenkubeError):
    """The data is unfit for training or scoring; the message lists every problem."""


class ConfigError(ZenkubeError):
    """A config file, flag or stack is wrong or incomplete."""


def user_error(exc: BaseException | None) -> ZenkubeError | None:
    """The ZenkubeError behind `exc` (ZenML may wrap a step's exception), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ZenkubeError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


# What ZenML's step signal handler raises in a step on SIGINT/SIGTERM instead of Python's
# KeyboardInterrupt (zenml/orchestrators/signal_handler.py, `_finalize_shutdown`): both
# are `Exception`s, so an `except Exception` in step code would swallow a Ctrl-C.
_ZENML_INTERRUPTS = {"RunInterruptedException", "RunStoppedException"}


def is_interrupt(exc: BaseException) -> bool:
    """True for a Ctrl-C or a stop however it arrives: KeyboardInterrupt, SystemExit or
    ZenML's run-interrupted/stopped exceptions. Code that catches `Exception` re-raises these."""
    if not isinstance(exc, Exception):
        return True
    return any(
        cls.__name__ in _ZENML_INTERRUPTS and cls.__module__.startswith("zenml")
        for cls in type(exc).__mro__
    )


def interrupted(exc: BaseException | None) -> bool:
    """True when `exc`, or an exception it was raised from, is an interrupt (see is_interrupt)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if is_interrupt(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
