"""The two kinds of pattern an admin types into a rule, compiled and checked.

Action-type patterns are globs (`*` any run of characters, `?` one; everything else is
literal), case-insensitive. Input patterns are regular expressions run by RE2, which
guarantees time linear in the input: a pattern RE2 can not run that way (backreferences,
lookaround) is refused with the reason, so no admin-entered pattern can hang a worker.
"""

import re

import re2

MAX_PATTERN_LENGTH = 500
# RE2 memory budget per compiled pattern; a pattern that needs more is refused.
RE2_MAX_MEMORY = 1 << 20


class PatternError(ValueError):
    pass


def glob_compile(pattern: str) -> re.Pattern:
    if not pattern.strip():
        raise PatternError("a pattern can not be empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"a pattern can have at most {MAX_PATTERN_LENGTH} characters")
    parts = []
    for char in re.sub(r"\*+", "*", pattern.strip()):
        parts.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
    # Only `.*` and `.` between literals: no nested repetition, so matching is cheap.
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _re2_options():
    options = re2.Options()
    options.log_errors = False
    options.max_mem = RE2_MAX_MEMORY
    return options


def regex_compile(pattern: str):
    """An RE2 pattern object, or PatternError saying why the pattern is refused."""
    if not isinstance(pattern, str) or not pattern:
        raise PatternError("the pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"a pattern can have at most {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _re2_options())
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(
            f"{reason} (patterns run in linear time, so backreferences and lookarounds are not supported)"
        ) from None
