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
