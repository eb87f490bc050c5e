"""Topic patterns in RE2 syntax (pulse's ``TopicPattern``), compiled for Python's :mod:`re` so
that they select the topics Go's ``regexp`` selects: what RE2 refuses is refused, and the RE2
forms Python reads differently are rewritten (see :func:`compile_topic_pattern`)."""

from __future__ import annotations

import functools
import re

from ._exceptions import ConfigurationError

__all__ = ["compile_topic_pattern"]


class _Refused(Exception):
    """A construct of the pattern that RE2 refuses, or that RE2 and Python read differently."""


_INVALID = "topic pattern must be a valid regex"

# Go's ASCII classes (regexp/syntax), as ranges inside a Python character class.
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# RE2's Perl classes are ASCII-only (and its \s has no \v): spelled out, so that Python's
# Unicode mode (needed for RE2's Unicode case folding under (?i)) matches the same characters.
_PERL_CLASSES = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_WORD = "[0-9A-Za-z_]"
_BOUNDARIES = {
    "b": "(?a:\\b)",
    # Not (?a:\B): Python's \B does not match the empty text, RE2's does.
    "B": f"(?-i:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))",
}
_ANCHORS = frozenset(("^", "$", "\\A", "\\Z", *_BOUNDARIES.values()))
_OCTAL = "01234567"
_HEX = frozenset("0123456789abcdefABCDEF")
_MAX_REPEAT = 1000  # RE2's limit on a counted repeat
_REPEAT = re.compile(r"\{(\d*)(,(\d*))?\}", re.ASCII)
_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)  # valid in both Go and Python
_FLAG = re.compile(r"[a-zA-Z-]*[:)]", re.ASCII)
_GLOBAL_FLAGS = re.compile(r"\(\?[a-zA-Z-]*\)", re.ASCII)


@functools.lru_cache(maxsize=64)
def compile_topic_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 topic pattern (pulse's ``TopicPattern``) into a Python regex that matches
    the same topics. Use its ``search`` (unanchored, as Go's ``MatchString``).

    Rewritten for Python: ``\\z``, ``(?<name>...)``, ``\\Q...\\E``, ``\\x{...}``, octal escapes
    (``\\12`` is a character to RE2, a backreference to Python), ``[[:alpha:]]`` and the other
    ASCII classes; ``\\d``, ``\\w``, ``\\s``, ``\\b`` and ``\\B`` are spelled out ASCII-only, as in
    RE2; ``$`` (without the ``m`` flag) matches only at the very end, as RE2's does; anchors
    may be repeated.

    Refused, though Python's ``re`` would accept them (RE2 does not): backreferences (``\\1``,
    ``(?P=name)``), lookahead and lookbehind, atomic groups ``(?>...)``, possessive repeats
    (``a*+``), conditionals, comments ``(?#...)``, ``\\Z``, escapes RE2 lacks (``\\u``,
    ``\\N{...}``, ``\\G``...), the flags ``a``, ``L``, ``u``, ``x``, counted repeats above 1000,
    and ``{,n}`` (a repeat to Python, literal text to RE2). Refused because Python cannot match
    them: ``\\p{...}`` Unicode classes, the ``U`` (ungreedy) flag, and (Python's rule) flags
    ``(?i)`` anywhere but at the start: write ``(?i:...)`` around the part they apply to.

    Known differences that remain: case folding under ``(?i)`` is Python's, which also folds
    the dotless and dotted i (U+0131, U+0130) with ``i`` and ``I`` where RE2 does not; and in a
    pattern that sets the ``m`` flag anywhere, ``$`` outside it still matches before a final
    newline.

    :raises ConfigurationError: ``topic pattern must be a valid regex: <why>``.
    """
    translated = pattern
    try:
        translated = _translate(pattern)
        return re.compile(translated)
    except _Refused as exc:
        raise ConfigurationError(f"{_INVALID}: {exc}") from None
    except re.error as exc:
        if translated == pattern:
            raise ConfigurationError(f"{_INVALID}: {exc}") from None
        # Python's positions are in the rewritten pattern: show it too.
        where = "" if exc.pos is None else f" at position {exc.pos}"
        raise ConfigurationError(
            f"{_INVALID}: {exc.msg}{where} of {translated!r} (the pattern as rewritten for "
            "Python's re)"
        ) from None
    except RecursionError:
        raise ConfigurationError(f"{_INVALID}: groups nest too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. a repeat count past C's integers
        raise ConfigurationError(f"{_INVALID}: {exc}") from None


def _translate(pattern: str) -> str:
    """``pattern`` (RE2 syntax) rewritten for Python's ``re``.

    :raises _Refused: a construct RE2 refuses, or one Python cannot express.
    """
    out: list[str] = []
    dollars: list[int] = []  # where `$` was written: RE2's `$` is Python's `\Z` without (?m)
    multiline = False
    leading_flags = 0  # how many (?flags) groups open the pattern
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            text, i = _escape(pattern, i, in_class=False)
            out.append(text)
        elif c == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
        elif c == "(":
            text, end, sets_multiline = _group(pattern, i)
            if _GLOBAL_FLAGS.fullmatch(text):
                if len(out) > leading_flags:
                    raise _Refused(
                        f"flags {text!r} at position {i}: Python's re takes them only at the "
                        "start of the pattern; write (?flags:...) around the part they apply to"
                    )
                leading_flags += 1
            multiline = multiline or sets_multiline
            out.append(text)
            i = end
        elif c in "*+?":
            _repeated(out)
            out.append(c)
            i = _after_repeat(pattern, i + 1, out)
        elif c == "{":
            text, i, repeat = _brace(pattern, i)
            if repeat:
                _repeated(out)
            out.append(text)
            if repeat:
                i = _after_repeat(pattern, i, out)
        else:
            if c == "$":
                dollars.append(len(out))
            out.append(c)
            i += 1
    if not multiline:
        for index in dollars:
            # RE2's `$` is the end of the text; Python's also matches before a final newline.
            out[index] = out[index].replace("$", "\\Z")
    return "".join(out)


def _repeated(out: list[str]) -> None:
    """A repeat follows: Python refuses to repeat a bare anchor (RE2 does not), so group it."""
    if out and out[-1] in _ANCHORS:
        out[-1] = f"(?:{out[-1]})"


def _after_repeat(pattern: str, i: int, out: list[str]) -> int:
    """After a repeat operator: accept a lazy ``?``, refuse a possessive ``+``."""
    if i < len(pattern) and pattern[i] == "?":
        out.append("?")
        i += 1
    if i < len(pattern) and pattern[i] == "+":
        raise _Refused(f"'+' after a repeat at position {i} (a possessive repeat): RE2 has none")
    return i


def _brace(pattern: str, i: int) -> tuple[str, int, bool]:
    """``{`` at ``i``: a counted repeat (checked against RE2's rules) or a literal brace; and
    whether it is a repeat."""
    match = _REPEAT.match(pattern, i)
    if match is None or (not match[1] and match[2] is None):
        return "\\{", i + 1, False  # literal in both, `{}` included
    low, high = match[1], match[3]
    if not low:
        raise _Refused(
            f"{match[0]!r} at position {i} is a repeat to Python but literal text to RE2; "
            "write {0,n} for a repeat or \\{ for the text"
        )
    if int(low) > _MAX_REPEAT or (high and int(high) > _MAX_REPEAT):
        raise _Refused(f"invalid repeat count {match[0]!r}: RE2 allows at most {_MAX_REPEAT}")
    return match[0], match.end(), True


def _group(pattern: str, i: int) -> tuple[str, int, bool]:
    """``(`` at ``i``: what to write, where to go on, and whether it sets the ``m`` flag."""
    if not pattern.startswith("(?", i):
        return "(", i + 1, False
    rest = pattern[i + 2 : i + 4]
    where = f"at position {i}"
    if rest.startswith(("=", "!", "<=", "<!")):
        raise _Refused(f"lookaround {pattern[i : i + 4]!r} {where}: RE2 has no lookarounds")
    if rest.startswith("P="):
        raise _Refused(f"backreference {pattern[i : i + 4]!r} {where}: RE2 has no backreferences")
    if rest.startswith(">"):
        raise _Refused(f"atomic group '(?>' {where}: RE2 has no atomic groups")
    if rest.startswith("#"):
        raise _Refused(f"comment '(?#' {where}: RE2 has no comments")
    if rest.startswith("("):
        raise _Refused(f"conditional '(?(' {where}: RE2 has no conditionals")
    if rest.startswith(("P<", "<")):
        start = i + (4 if rest.startswith("P") else 3)
        close = pattern.find(">", start)
        name = pattern[start:close] if close >= 0 else ""
        if close < 0 or not _GROUP_NAME.fullmatch(name):
            raise _Refused(
                f"bad group name {pattern[start : close if close >= 0 else None]!r} {where}: "
                "expected ASCII letters, digits and '_', not starting with a digit"
            )
        return f"(?P<{name}>", close + 1, False  # RE2's (?<name>...) is Python's (?P<name>...)
    if rest.startswith(":"):
        return "(?:", i + 3, False
    flags = _FLAG.match(pattern, i + 2)
    if flags is None:
        return "(?", i + 2, False  # let Python say what is wrong
    text = flags[0][:-1]
    for flag in text:
        if flag == "U":
            raise _Refused(f"flag 'U' (ungreedy) {where}: Python's re has no ungreedy mode")
        if flag not in "ims-":
            raise _Refused(f"flag {flag!r} {where}: RE2 knows the flags i, m, s and U only")
    sets = text.partition("-")[0]
    return "(?" + flags[0], flags.end(), "m" in sets


def _escape(pattern: str, i: int, *, in_class: bool) -> tuple[str, int]:
    """``\\`` at ``i``: the Python spelling of the escape and where it ends. In a class, a
    negated Perl class (``\\D``, ``\\W``, ``\\S``) comes back as a whole ``[^...]`` set, which
    :func:`_char_class` joins to the class by alternation."""
    if i + 1 >= len(pattern):
        raise _Refused("trailing backslash at the end of the pattern")
    c = pattern[i + 1]
    end = i + 2
    where = f"at position {i}"
    if not c.isascii():
        raise _Refused(f"escaped non-ASCII character {c!r} {where}: RE2 refuses it")
    if not c.isalnum():
        return pattern[i:end], end  # escaped punctuation: itself, in both
    if c in "afnrtv":
        return pattern[i:end], end
    perl = _PERL_CLASSES.get(c.lower())
    if perl is not None:  # RE2's are ASCII-only, Python's (in Unicode mode) are not
        if c.islower():
            return (perl if in_class else f"[{perl}]"), end
        return f"[^{perl}]", end
    if not in_class:
        if c in "bB":
            return _BOUNDARIES[c], end
        if c in "Az":
            return ("\\A" if c == "A" else "\\Z"), end  # RE2's \z is Python's \Z
        if c == "Z":
            raise _Refused(f"'\\Z' {where}: RE2 has no \\Z; use \\z for the end of the text")
        if c == "Q":  # \Q...\E: literal text
            close = pattern.find("\\E", end)
            literal = pattern[end:] if close < 0 else pattern[end:close]
            return re.escape(literal), len(pattern) if close < 0 else close + 2
    if c == "x":
        if pattern.startswith("{", end):
            close = pattern.find("}", end)
            digits = pattern[end + 1 : close] if close >= 0 else ""
            if not digits or not set(digits) <= _HEX or int(digits, 16) > 0x10FFFF:
                raise _Refused(f"bad hex escape {pattern[i : close + 1 or None]!r} {where}")
            return f"\\U{int(digits, 16):08x}", close + 1
        digits = pattern[end : end + 2]
        if len(digits) < 2 or not set(digits) <= _HEX:
            raise _Refused(f"bad hex escape {pattern[i : end + 2]!r} {where}: expected \\xHH")
        return pattern[i : end + 2], end + 2
    if c == "0" or (c in _OCTAL and end < len(pattern) and pattern[end] in _OCTAL):
        # RE2 reads \0, and \1 to \7 followed by an octal digit, as octal (up to three digits);
        # Python reads \12 as a backreference: spell the character out.
        stop = end
        while stop < len(pattern) and stop < i + 4 and pattern[stop] in _OCTAL:
            stop += 1
        return f"\\U{int(pattern[i + 1 : stop], 8):08x}", stop
    if c.isdigit():
        raise _Refused(f"backreference '\\{c}' {where}: RE2 has no backreferences")
    if c in "pP":
        raise _Refused(f"Unicode class '\\{c}' {where}: RE2 syntax that Python's re cannot match")
    inside = " inside [...]" if in_class else ""
    raise _Refused(f"'\\{c}'{inside} {where} is not an escape RE2 accepts")


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """``[`` at ``i``: the character class, for Python, and where it ends."""
    items: list[str] = []  # the class's members, spelled for a Python class
    sets: list[str] = []  # negated Perl and ASCII classes in it: sets joined by alternation
    j, n = i + 1, len(pattern)
    negated = j < n and pattern[j] == "^"
    if negated:
        j += 1
    if j < n and pattern[j] == "]":  # a first `]` is a literal in both
        items.append("\\]")
        j += 1
    dash = False  # the last character written was an unescaped `-`
    while j < n and pattern[j] != "]":
        c = pattern[j]
        after_dash, dash = dash, False
        if c == "\\":
            text, j = _escape(pattern, j, in_class=True)
            (sets if text.startswith("[^") else items).append(text)
            continue
        if c == "[":
            close = pattern.find(":]", j + 2) if pattern.startswith("[:", j) else -1
            if close >= 0:
                name = pattern[j + 2 : close]
                ranges = _POSIX_CLASSES.get(name.removeprefix("^"))
                if ranges is None:
                    raise _Refused(f"unknown ASCII class '[:{name}:]' at position {j}")
                if name.startswith("^"):
                    sets.append(f"[^{ranges}]")
                else:
                    items.append(ranges)
                j = close + 2
                continue
            items.append("\\[")  # a literal `[` (Python would warn of a nested set)
            j += 1
            continue
        if c in "&~|^" or (c == "-" and after_dash):
            # Literal in both; escaped so that Python reads no (future) set operation in `--`,
            # `&&`, `~~` or `||`, and no negation in a `^` that joined sets put first.
            items.append("\\" + c)
            j += 1
            continue
        dash = c == "-"
        items.append(c)
        j += 1
    if j >= n:  # unterminated: Python says so
        return "[" + ("^" if negated else "") + "".join(items), j
    members = "".join(items)
    if not sets:
        return "[" + ("^" if negated else "") + members + "]", j + 1
    union = "|".join(([f"[{members}]"] if members else []) + sets)
    if negated:  # one character in none of them
        return f"(?:(?!{union})(?s:.))", j + 1
    return f"(?:{union})", j + 1
