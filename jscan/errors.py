"""jscan's errors: one base class, so that the command line catches them in one place.

Every message names what is wrong (a key, a flag, a file, a store) and how to fix it.
The classes also derive from ValueError, as the checks they replace raised it.
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
