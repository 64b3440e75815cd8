"""Errors a user can hit and fix: the CLI prints their message without a traceback."""


class ZenkubeError(Exception):
    """Something the user can fix; the message says what and how."""


class DataValidationError(ZenkubeError):
    """The data is unfit for training or scoring; the message lists every problem."""


class ConfigError(ZenkubeError):
    """A config file, flag or stack is wrong or incomplete."""
