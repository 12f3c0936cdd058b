"""Exceptions of the kgstore binding, one per library status code.

Each carries the library's message (what failed and what to do) and
``.code``, the negative KG_E* status. They also derive from the built-in
class a Python user already catches: a duplicate id or bad input is a
``ValueError``, a lost server a ``ConnectionError``, and so on.
"""


class KgError(Exception):
    """Base class of every kgstore error. ``code`` is the KG_E* status."""

    code = -12


class NotFoundError(KgError, ValueError, LookupError):
    """No such id in this tenant (update/delete of a missing record, a
    relation whose endpoint is missing). get_entity/get_relation return None
    instead of raising this."""

    code = -1


class DuplicateError(KgError, ValueError):
    """The id is already used in this tenant (use upsert to overwrite)."""

    code = -2


class InvalidInputError(KgError, ValueError):
    """Bad argument: invalid JSON, bad tenant id, weight outside [0, 1]..."""

    code = -3


class StoreBusyError(KgError, TimeoutError):
    """Database locked by another writer past the timeout."""

    code = -4


class GraphConnectionError(KgError, ConnectionError):
    """The server is unreachable or the connection broke (KG_ECONNLOST)."""

    code = -5


class PoolExhaustedError(GraphConnectionError):
    """No pooled connection became free within the pool timeout (KG_EPOOL)."""

    code = -6


class BudgetExceededError(KgError, MemoryError):
    """The store's memory budget would be exceeded."""

    code = -7


class StorageIOError(KgError, OSError):
    """File or network I/O failed."""

    code = -8


class CorruptDataError(KgError, ValueError):
    """Corrupt or truncated input or database file."""

    code = -9


class UnsupportedError(KgError, NotImplementedError):
    """Not available on this backend or build."""

    code = -10


class OutOfMemoryError(KgError, MemoryError):
    """The process ran out of memory."""

    code = -11


class InternalError(KgError, RuntimeError):
    """A bug in kgstore or an unexpected engine error."""

    code = -12


# {status code: class} for _native.register_errors, from each class's
# ``code``; 0 is the base class, raised for a code without a class.
BY_CODE = {0: KgError}
BY_CODE.update(
    (cls.code, cls)
    for cls in (
        NotFoundError,
        DuplicateError,
        InvalidInputError,
        StoreBusyError,
        GraphConnectionError,
        PoolExhaustedError,
        BudgetExceededError,
        StorageIOError,
        CorruptDataError,
        UnsupportedError,
        OutOfMemoryError,
        InternalError,
    )
)
