"""jscan's errors: one base class, so that the command line catches them in one place.

Every message names what is wrong (a key, a flag, a file, a store) and how to fix it.

`JscanError` derives from ValueError: every refusal is a bad value the caller gave (a key,
a flag, a path), code written against jscan 0.1's ValueErrors keeps catching them, and the
forward models raise plain ValueErrors for bad arguments as janssen's do (and the numpy
input readers, whose ValueErrors the plan and the checks turn into ConfigErrors). Tell a
refusal from a bug by its class: the tests assert `ConfigError`, `StoreError`,
`ClusterError` or `UsageError` for a refusal, never ValueError.
"""


class JscanError(ValueError):
    """A request jscan refuses before (or instead of) doing harm; the message has the fix."""


class ConfigError(JscanError):
    """A config key, or an input file it names, is missing, unknown or invalid."""


class StoreError(JscanError):
    """A store cannot be used as asked (missing, damaged, another run's, no room)."""


class ClusterError(JscanError):
    """The Dask cluster cannot be reached or is named wrongly; nothing was written."""


class UsageError(JscanError):
    """A flag or the environment does not allow the request (a compile-cache folder others
    could write, a missing optional package)."""


class JscanWarning(UserWarning):
    """A config jscan runs but that is most likely a mistake (units, camera sampling); the
    command line prints it as one line, ``jscan: warning: ...``."""
