"""The enabled rules and the risk settings, compiled once and cached per process.

An edit reaches every process on its next assessment, with no database query per
assessment while nothing changed:

- in this process, `rulebook_changed()` drops the cache at once (and again on commit);
- on PostgreSQL, a trigger on the rule and settings tables sends NOTIFY on commit, and a
  daemon thread per process that LISTENs marks the cache stale. While that listener is
  not connected, every assessment reloads, so a missed notification can not leave a
  process on old rules;
- on an SQLite file, `rulebook_changed()` touches a version file beside the database on
  commit, and each assessment compares its modification time (a `stat`, no query).
"""

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from risk.models import SEVERITY, RiskRule, RiskSettings
from risk.patterns import PatternError, glob_compile, regex_compile

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "hitl_risk_rules"
AMOUNT_KEYS = ("amount", "value", "total")
_TYPE_MEMO_LIMIT = 10_000


def input_text(value) -> str:
    """The text an input pattern is matched against."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def first_amount(inputs: dict) -> tuple[str, Decimal | None] | None:
    """(key, number) for the first of amount/value/total present; number None when not numeric."""
    for key in AMOUNT_KEYS:
        if key in inputs:
            value = inputs[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
                return key, None
            try:
                number = Decimal(str(value).strip().replace(",", ""))
            except InvalidOperation:
                return key, None
            return key, number if number.is_finite() else None
    return None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    description: str
    level: str
    severity: int
    requires_approval: bool
    exact_types: frozenset
    type_patterns: tuple
    input_patterns: tuple  # ((key, compiled RE2 pattern), ...)
    min_amount: Decimal | None
    reason: str  # "Matched rule NAME: DESCRIPTION"
    checks_inputs: bool

    def matches_type(self, action_type_lower: str) -> bool:
        if not self.exact_types and not self.type_patterns:
            return True
        return action_type_lower in self.exact_types or any(p.fullmatch(action_type_lower) for p in self.type_patterns)

    def matches_inputs(self, inputs: dict) -> bool:
        for key, pattern in self.input_patterns:
            if key in inputs and pattern.search(input_text(inputs[key])) is None:
                return False
        if self.min_amount is not None:
            found = first_amount(inputs)
            if found is not None and found[1] is not None and found[1] < self.min_amount:
                return False
        return True


def rule_compile(rule: RiskRule, *, strict: bool = True) -> CompiledRule:
    """Compile a rule. With strict=False, a stored pattern that no longer compiles is
    dropped with an error in the log: the rule then matches more, never less."""

    def each(patterns, compile_one):
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(compile_one(pattern))
            except PatternError:
                if strict:
                    raise
                logger.error("risk rule %s: pattern %r ignored, it does not compile", rule.name, pattern)
        return compiled

    input_patterns = []
    for key, pattern in (rule.input_patterns or {}).items():
        input_patterns.extend((key, p) for p in each([pattern], regex_compile))
    return CompiledRule(
        name=rule.name,
        description=rule.description,
        level=rule.risk_level,
        severity=SEVERITY[rule.risk_level],
        requires_approval=rule.requires_approval,
        exact_types=frozenset(t.strip().lower() for t in rule.action_types or () if t.strip()),
        type_patterns=tuple(each(rule.action_type_patterns or (), glob_compile)),
        input_patterns=tuple(input_patterns),
        min_amount=rule.min_amount,
        reason=(
            f"Matched rule {rule.name}: {rule.description}"
            if rule.description
            else f"Matched rule {rule.name} ({rule.risk_level})"
        ),
        checks_inputs=bool(input_patterns) or rule.min_amount is not None,
    )


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """The settings row, with the environment's defaults filled in where it leaves them blank."""

    default_level: str
    default_requires_approval: bool
    auto_approve_low: bool
    bases: dict
    bulk_weight: float
    financial_weight: float
    external_weight: float
    threshold_critical: float
    threshold_high: float
    threshold_medium: float
    bulk_threshold: int
    internal_domains: tuple
    timeout_hours: dict

    @classmethod
    def from_settings(cls, row: RiskSettings) -> "RiskConfig":
        return cls(
            default_level=row.default_risk_level or settings.ZAKOPS_HITL_DEFAULT_RISK_LEVEL,
            default_requires_approval=(
                settings.ZAKOPS_HITL_DEFAULT_REQUIRES_APPROVAL
                if row.default_requires_approval is None
                else row.default_requires_approval
            ),
            auto_approve_low=(
                settings.ZAKOPS_HITL_AUTO_APPROVE_LOW_RISK if row.auto_approve_low_risk is None else row.auto_approve_low_risk
            ),
            bases={"low": row.base_low, "medium": row.base_medium, "high": row.base_high, "critical": row.base_critical},
            bulk_weight=row.bulk_weight,
            financial_weight=row.financial_weight,
            external_weight=row.external_weight,
            threshold_critical=row.threshold_critical,
            threshold_high=row.threshold_high,
            threshold_medium=row.threshold_medium,
            bulk_threshold=row.bulk_threshold,
            internal_domains=tuple(d.strip().lower().lstrip("@") for d in row.internal_domains or () if d.strip()),
            timeout_hours={
                "critical": row.timeout_critical_hours,
                "high": row.timeout_high_hours,
                "medium": row.timeout_other_hours,
                "low": row.timeout_other_hours,
            },
        )


@dataclass(slots=True)
class RuleBook:
    rules: tuple  # most severe first, then by name
    config: RiskConfig
    _by_type: dict = field(default_factory=dict)

    def candidates(self, action_type: str) -> tuple:
        """The rules whose types or patterns match; memoised, as action types are few."""
        key = action_type.lower()
        found = self._by_type.get(key)
        if found is None:
            found = tuple(rule for rule in self.rules if rule.matches_type(key))
            if len(self._by_type) < _TYPE_MEMO_LIMIT:
                self._by_type[key] = found
        return found


def settings_row() -> RiskSettings:
    """The settings row; an unsaved one with SPEC's defaults if it was never created."""
    return RiskSettings.objects.filter(pk=RiskSettings.SINGLETON_ID).first() or RiskSettings(pk=RiskSettings.SINGLETON_ID)


def rulebook_load() -> RuleBook:
    compiled = [rule_compile(rule, strict=False) for rule in RiskRule.objects.filter(enabled=True)]
    compiled.sort(key=lambda r: (-r.severity, r.name))
    return RuleBook(rules=tuple(compiled), config=RiskConfig.from_settings(settings_row()))


# --- change detection ----------------------------------------------------------------


class _NoWatcher:
    """In-memory SQLite (tests): one process, so in-process invalidation is enough."""

    def changed(self) -> bool:
        return False

    def announce(self) -> None:
        pass


class _FileWatcher:
    def __init__(self, path: Path):
        self.path = path
        self._path = str(path)
        self.seen = self._stamp()

    def _stamp(self):
        try:
            return os.stat(self._path).st_mtime_ns
        except FileNotFoundError:
            return None

    def changed(self) -> bool:
        stamp = self._stamp()
        if stamp != self.seen:
            self.seen = stamp
            return True
        return False

    def announce(self) -> None:
        self.path.write_text(str(time.time_ns()))


class _PostgresWatcher:
    RETRY_SECONDS = 2.0
    POLL_SECONDS = 1.0  # how soon stop() is noticed; notifications themselves arrive at once

    def __init__(self, settings_dict: dict):
        self.settings_dict = settings_dict
        self.connected = False
        self.dirty = True
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._listen_forever, name="risk-rules-listener", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=self.POLL_SECONDS * 5)

    def _conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        s = self.settings_dict
        return make_conninfo(
            dbname=s["NAME"], host=s["HOST"] or None, port=s["PORT"] or None,
            user=s["USER"] or None, password=s["PASSWORD"] or None,
        )

    def _listen_forever(self):
        import psycopg

        while not self.stopping.is_set():
            try:
                with psycopg.connect(self._conninfo(), autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.connected = True
                    self.dirty = True  # whatever happened while not listening
                    idle = 0.0
                    while not self.stopping.is_set():
                        for _ in conn.notifies(timeout=self.POLL_SECONDS):
                            self.dirty = True
                        idle += self.POLL_SECONDS
                        if idle >= 60:  # notice a dead connection
                            conn.execute("SELECT 1")
                            idle = 0.0
            except Exception:
                logger.warning("risk rules listener disconnected; assessments reload rules until it is back", exc_info=True)
            self.connected = False
            self.stopping.wait(self.RETRY_SECONDS)

    def changed(self) -> bool:
        if not self.connected:
            return True
        if self.dirty:
            self.dirty = False  # cleared before the reload, so a change during it is not lost
            return True
        return False

    def announce(self) -> None:
        pass  # the database trigger sends the NOTIFY on commit


def _watcher_for(conn):
    if conn.vendor == "postgresql":
        return _PostgresWatcher(dict(conn.settings_dict))
    name = str(conn.settings_dict["NAME"])
    if conn.is_in_memory_db() or name.startswith("file:"):
        return _NoWatcher()
    return _FileWatcher(Path(f"{name}.risk-version"))


class _Cache:
    def __init__(self):
        self.book: RuleBook | None = None
        self.watcher = None
        self.lock = threading.Lock()


_cache = _Cache()


def rulebook_current() -> RuleBook:
    """The compiled rule book; reloaded only when something changed."""
    if _cache.watcher is None:
        with _cache.lock:
            if _cache.watcher is None:
                _cache.watcher = _watcher_for(connection)
    if _cache.watcher.changed() or _cache.book is None:
        _cache.book = rulebook_load()
    return _cache.book


def rulebook_forget() -> None:
    _cache.book = None


def rulebook_shutdown() -> None:
    """Stop watching for changes (closes the listener's connection); for tests and tools."""
    watcher, _cache.watcher, _cache.book = _cache.watcher, None, None
    if isinstance(watcher, _PostgresWatcher):
        watcher.stop()


def rulebook_changed() -> None:
    """Call after writing rules or settings: this process now, every process on commit."""

    def on_commit():
        rulebook_forget()
        if _cache.watcher is not None:
            _cache.watcher.announce()
        elif connection.vendor == "sqlite":
            _watcher_for(connection).announce()

    rulebook_forget()
    transaction.on_commit(on_commit)

