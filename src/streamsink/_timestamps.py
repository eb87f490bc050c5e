"""Envelope timestamps: what a sink writes, and RFC 3339 as Go's ``time`` package reads it.

A sink writes RFC 3339 UTC with ``Z`` and trailing-zero-trimmed fractional seconds (Go's
RFC3339Nano of ``time.Now().UTC()``). Go services write nanoseconds, and a Go time decoded from
text keeps the offset it was written with, so a received timestamp is also kept as a
:class:`GoTime` (nanoseconds since the epoch, offset) that writes back exactly.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from time import time_ns as _time_ns
from typing import NamedTuple

from ._exceptions import ConfigurationError, DecodeError
from ._streams import shown

__all__ = [
    "GoTime",
    "datetime_ns",
    "format_go_time",
    "format_timestamp",
    "go_datetime",
    "now_timestamp",
    "parse_go_time",
    "parse_timestamp",
]


def format_timestamp(ts: datetime) -> str:
    """RFC 3339 UTC with ``Z`` and no trailing zeros in the fraction, as Go's RFC3339Nano.

    :raises ConfigurationError: a naive datetime (its zone would be a guess).
    """
    tz = ts.tzinfo
    if tz is None:
        raise ConfigurationError(f"timestamp must be timezone-aware, got naive {ts!r}")
    if tz is not UTC:
        offset = ts.utcoffset()
        if offset:
            ts = ts.astimezone(UTC)
        elif offset is None:  # a tzinfo without an offset: the wall time, as is
            ts = ts.replace(tzinfo=UTC)
    text = ts.isoformat()[:-6]  # the offset is zero now: drop its "+00:00"
    if ts.microsecond:
        text = text.rstrip("0")
    return text + "Z"


# (second, "YYYY-MM-DDTHH:MM:SS" of it) and (first ns, first ns after, "YYYY-MM-DDTHH:MM:SS.mmm")
# of a millisecond, each replaced as one tuple so threads never see a prefix paired with the
# wrong time.
_second_prefix: tuple[int, str] = (-1, "")
_milli_prefix: tuple[int, int, str] = (0, 0, "")
_MILLIS = tuple(f".{n:03d}" for n in range(1000))
# The fraction's last three digits (1-999) and the closing Z, trailing zeros trimmed.
_MICRO_TAILS = ("Z", *(f"{n:03d}".rstrip("0") + "Z" for n in range(1, 1000)))


def now_timestamp() -> str:
    """The current UTC time as :func:`format_timestamp` writes it (microsecond precision).

    A sink stamps every event it sends, many in the same millisecond: the text up to the
    milliseconds is kept for the current millisecond (the date and time for the current
    second), and the last three digits come from a table, which costs a third of formatting
    the fraction each time (``python -m benchmarks.micro``).
    """
    global _milli_prefix
    ns = _time_ns()
    start, end, prefix = _milli_prefix
    if not start <= ns < end:
        start = ns - ns % 1_000_000
        end = start + 1_000_000
        prefix = _milli_text(start // 1_000_000)
        _milli_prefix = (start, end, prefix)
    micros = (ns - start) // 1000  # small ints from here: no multi-digit arithmetic
    if micros:
        return prefix + _MICRO_TAILS[micros]
    # A whole millisecond: the zeros to trim are the milliseconds' (all of the fraction at a
    # whole second, then its point too).
    return prefix.rstrip("0").rstrip(".") + "Z"


def _milli_text(milli: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmm`` of a millisecond since the epoch (UTC)."""
    global _second_prefix
    second, millis = divmod(milli, 1000)
    cached_second, date_time = _second_prefix
    if second != cached_second:
        date_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_prefix = (second, date_time)
    return date_time + _MILLIS[millis]


# RFC 3339 as we accept it in what we write ourselves (dead letters): fromisoformat alone also
# takes forms Go refuses (dates without time, spaces, basic format). ASCII digits only.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)


def parse_timestamp(text: str) -> datetime:
    """Parse RFC 3339 (nanoseconds truncated to microseconds, offsets converted) into UTC.

    The strict form: at most nine fraction digits, two-digit hours, offsets within a day.
    Envelopes read timestamps as Go does (:func:`parse_go_time`), which accepts a little more.

    :raises DecodeError: anything that is not RFC 3339, or a time outside years 1 to 9999 once
        converted to UTC (``9999-12-31T23:59:59-01:00`` is valid RFC 3339 that ``datetime``
        cannot hold in UTC).
    """
    size = len(text)
    if (
        (
            22 <= size <= 27
            and text[4:17:3] == "--T::"  # the separators at 4, 7, 10, 13 and 16
            and text[19] == "."
            and text[-1] == "Z"
        )
        or (size == 20 and text[4:20:3] == "--T::Z")
    ):
        # What we write (UTC, at most microseconds): with its shape checked above, fromisoformat
        # checks the digits, and its tzinfo is UTC itself. This skips the regex on the hot path.
        try:
            return datetime.fromisoformat(text)
        except ValueError as exc:
            raise DecodeError(f"timestamp {shown(text)} is not RFC 3339: {exc}") from None
    if not _RFC3339.fullmatch(text):
        raise DecodeError(f"timestamp {shown(text)} is not RFC 3339")
    given = text
    if "." in text:
        # datetime keeps microseconds; Go sends up to nanoseconds.
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DecodeError(f"timestamp {given!r} is not RFC 3339: {exc}") from None
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        # Only an offset can take a valid date out of range: year 9999 behind UTC, year 1 ahead.
        raise DecodeError(
            f"timestamp {given!r} is out of range: in UTC it falls outside years 1 to 9999"
        ) from None


class GoTime(NamedTuple):
    """A timestamp as Go's ``time.Time`` holds one decoded from RFC 3339: the instant, in
    nanoseconds since the Unix epoch, and the offset east of UTC it was written with, in seconds
    (0 for ``Z``). :func:`format_go_time` writes it back as Go's ``Time.MarshalJSON`` does."""

    ns: int
    offset: int


# What Go's time.Time.UnmarshalJSON accepts (time/format_rfc3339.go, parseStrictRFC3339): its
# strict parser, else time.Parse(time.RFC3339, ...), whose extra checks are disabled (go.dev/issue/
# 54580). So also a one-digit hour, a comma before the fraction, more than nine fraction digits
# (the rest ignored) and zone hours and minutes up to 99. Upper-case T and Z only, ASCII digits.
_GO_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d?):(\d\d):(\d\d)(?:[.,](\d+))?(?:Z|([+-])(\d\d):(\d\d))", re.ASCII
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, any year (Go's times reach year 0,
    which ``datetime`` does not): H. Hinnant's days_from_civil."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """The inverse of :func:`_days_from_civil`."""
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + (3 if month_index < 10 else -9)
    return year_of_era + era * 400 + (month <= 2), month, day


def parse_go_time(text: str) -> GoTime:
    """Parse a timestamp as Go's ``time.Time.UnmarshalJSON`` does, keeping its nanoseconds and
    its offset.

    :raises DecodeError: text Go refuses: not of the RFC 3339 shape above, or a month, day (for
        that month and year), hour, minute or second out of range (no leap second ``:60``).
    """
    found = _GO_RFC3339.fullmatch(text)
    if found is None:
        raise DecodeError(f"timestamp {shown(text)} is not RFC 3339")
    year, month, day, hour, minute, second = (int(found[i]) for i in range(1, 7))
    if not 1 <= month <= 12:
        raise DecodeError(f"timestamp {shown(text)} is out of range: month {month}")
    days = _DAYS_IN_MONTH[month - 1] + (month == 2 and _is_leap(year))
    if not 1 <= day <= days:
        raise DecodeError(f"timestamp {shown(text)} is out of range: day {day}")
    if hour > 23 or minute > 59 or second > 59:
        raise DecodeError(f"timestamp {shown(text)} is out of range: time of day")
    fraction = found[7] or ""
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0  # Go ignores digits past nine
    offset = 0
    if found[8] is not None:
        offset = (int(found[9]) * 60 + int(found[10])) * 60
        if found[8] == "-":
            offset = -offset
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return GoTime((seconds - offset) * 1_000_000_000 + nanos, offset)


def format_go_time(ts: GoTime) -> str:
    """``ts`` as Go's ``Time.MarshalJSON`` writes it: RFC3339Nano in the time's own offset
    (``Z`` for 0), the fraction without trailing zeros.

    An offset of 100 hours or more (``+99:99`` is 100:39), which Go reads but no ``hh:mm``
    holds, is written in UTC: the same instant, in a form Go reads back.
    """
    ns, offset = ts
    if abs(offset) >= 100 * 3600:
        offset = 0
    seconds, nanos = divmod(ns + offset * 1_000_000_000, 1_000_000_000)
    days, in_day = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(in_day, 3600)
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}"
    if nanos:
        text += f".{nanos:09d}".rstrip("0")
    if not offset:
        return text + "Z"
    sign = "-" if offset < 0 else "+"
    minutes = abs(offset) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def go_datetime(ts: GoTime) -> datetime | None:
    """``ts`` as an aware UTC datetime, truncated to microseconds; None outside the years 1 to
    9999 (in UTC) that ``datetime`` holds."""
    try:
        return _EPOCH + timedelta(microseconds=ts.ns // 1000)
    except OverflowError:
        return None


def datetime_ns(ts: datetime) -> int:
    """Nanoseconds since the Unix epoch of an aware datetime (naive ones are taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
