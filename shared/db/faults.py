"""What a database exception means for the caller: unavailable (retry later), a unique key
already taken (a conflict), or a value the database cannot hold (bad input).

Both drivers are covered: asyncpg's SQLSTATE codes on PostgreSQL, and SQLite's messages.
"""

from __future__ import annotations

import sqlalchemy.exc

# SQLSTATE classes and codes (PostgreSQL appendix A).
_CONNECTION_CLASS = "08"
_UNAVAILABLE_CODES = frozenset(
    {
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
        "40001",  # serialization_failure: retrying is the answer
        "40P01",  # deadlock_detected: likewise
    }
)
UNIQUE_VIOLATION = "23505"
# character_not_in_repertoire (NUL in text), untranslatable_character.
_BAD_CHARACTER_CODES = frozenset({"22021", "22P05"})
# numeric_value_out_of_range, invalid_text_representation of a number, floating point error.
_OUT_OF_RANGE_CODES = frozenset({"22003", "22P02", "2201E", "22P01"})


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return seen


def sqlstate(exc: BaseException) -> str | None:
    for link in _chain(exc):
        code = getattr(link, "sqlstate", None)
        if isinstance(code, str) and code:
            return code
    return None


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or is restarting: the request may be retried later."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # the pool is exhausted
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate(exc)
    if code is not None:
        return code.startswith(_CONNECTION_CLASS) or code in _UNAVAILABLE_CODES
    for link in _chain(exc):
        if isinstance(link, (ConnectionError, TimeoutError)):
            return True
        name = type(link).__name__
        if name in (
            "ConnectionDoesNotExistError",
            "CannotConnectNowError",
            "InterfaceError",
            "ConnectionFailureError",
        ):
            return True
        if isinstance(link, OSError) and not isinstance(link, FileNotFoundError):
            return True
        message = str(link).lower()
        if "database is locked" in message or "connection was closed" in message:
            return True
    return False


def is_unique_violation(exc: BaseException) -> bool:
    if not isinstance(exc, sqlalchemy.exc.IntegrityError):
        return False
    if sqlstate(exc) == UNIQUE_VIOLATION:
        return True
    return "unique constraint failed" in str(exc).lower()


def is_bad_character(exc: BaseException) -> bool:
    return sqlstate(exc) in _BAD_CHARACTER_CODES


def is_out_of_range(exc: BaseException) -> bool:
    return sqlstate(exc) in _OUT_OF_RANGE_CODES
