"""Benchmark of risk assessment, in process and over HTTP. It prints figures and asserts nothing.

1. The assessor, `risk.services.risk_assess()`, called in this process over a mix of 20
   calls (the ZakOps catalogue's action types with their sample inputs, plus generated
   vendor types that match many rules): median, p95 and mean microseconds per call, (a) with the
   default rules the migrations create and (b) with 1,000 generated rules added. Also the
   time to load the rule book (query and compile), paid once per change per process.
   Targets: under 8 µs median with the defaults, under 100 µs with 1,000 rules; the old
   design's assessor took about 24 µs with 6 rules.
2. `POST /api/hitl/assess-risk` under gunicorn with production settings and a bearer
   token, loaded with wrk: requests/s, p50/p99 latency, responses that are not 2xx/3xx
   and socket errors. The old design served about 2,500 req/s, without authentication.

The database is a scratch one, created and dropped here: PostgreSQL by default
(postgres://postgres@127.0.0.1:5432, trust auth, via createdb/dropdb), a temporary SQLite
file with --sqlite. With --database-url (or DATABASE_URL) that database is used as it is;
the generated rules are deleted and the bench token revoked afterwards.

    .venv/bin/python bench/risk.py [--sqlite] [--seconds 10] [--workers 2]
"""

import argparse
import contextlib
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from decimal import Decimal
from pathlib import Path

import _common as common  # bench/_common.py: this script's folder is first on sys.path

TARGET_DEFAULT_US = 8.0
TARGET_MANY_US = 100.0
OLD_ASSESS_US = 24.0  # old design, 6 rules
OLD_HTTP_RPS = 2500.0  # old design, no authentication

RULE_PREFIX = "bench_generated_"
VENDORS, THINGS = 50, 20  # 1,000 distinct types VENDOR{v}.DO_THING_{t}
LEVELS = ("low", "medium", "high", "critical")
ENDPOINT = "/api/hitl/assess-risk"
REQUEST_BODY = {"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}


# --- the database ----------------------------------------------------------------------


@contextlib.contextmanager
def database(args):
    """The database to run on: the given one, a temporary SQLite file, or a scratch PostgreSQL one."""
    if args.database_url:
        yield common.given_database(args.database_url)
    elif args.sqlite:
        folder = tempfile.mkdtemp(prefix="hitl-bench-")
        try:
            label = f"SQLite, temporary file in {folder}"
            yield common.Database(f"sqlite:///{folder}/bench.sqlite3", label, scratch=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        # On PostgreSQL the rule cache's LISTEN thread would log its lost connection.
        name = f"hitl_bench_{os.getpid()}"
        with common.scratch_postgres(name, hint=" Or use --sqlite.") as db:
            yield db


# --- 1. the assessor in this process ---------------------------------------------------


def generated_rules(count: int, seed: int = 1):
    """`count` enabled rules over 1,000 namespaced types: exact types, globs of several
    shapes (some matching a whole vendor or a thing across vendors), input patterns,
    minimum amounts, and a few rules on the catalogue's own types."""
    rng = random.Random(seed)
    for i in range(count):
        vendor, thing = i % VENDORS, (i // VENDORS) % THINGS
        spec = {
            "name": f"{RULE_PREFIX}{i:04d}",
            "description": f"Vendor {vendor} integration, operation {thing}",
            "risk_level": rng.choice(LEVELS),
            "requires_approval": rng.random() < 0.6,
            "enabled": True,
            "action_types": [],
            "action_type_patterns": [],
            "input_patterns": {},
            "min_amount": None,
        }
        kind = rng.random()
        if i % 100 == 0:
            spec["action_type_patterns"] = ["COMMUNICATION.*", "*.SEND_*"]
            spec["input_patterns"] = {"to": rf"@partner{vendor}\.com$"}
        elif i % 100 == 50:
            spec["action_type_patterns"] = ["FINANCIAL.*", f"VENDOR{vendor}.*"]
            spec["min_amount"] = Decimal(100_000)
        elif kind < 0.6:
            spec["action_types"] = [f"VENDOR{vendor}.DO_THING_{thing}", f"VENDOR{vendor}.UNDO_THING_{thing}"]
        elif kind < 0.7:
            spec["action_type_patterns"] = [f"VENDOR{vendor}.DO_THING_{thing}?"]
        elif kind < 0.8:
            spec["action_type_patterns"] = [f"VENDOR{vendor}.*"]
        elif kind < 0.9:
            spec["action_type_patterns"] = [f"*.DO_THING_{thing}"]
        else:
            spec["action_type_patterns"] = [f"VENDOR{vendor // 10}*.DO_THING_*"]
        if rng.random() < 0.2:
            spec["input_patterns"] = {**spec["input_patterns"], "to": rf"@partner{vendor}\.com$"}
        if rng.random() < 0.15:
            spec["min_amount"] = Decimal(1000 * (thing + 1))
        yield spec


def assess_cases() -> list:
    """20 calls as (group, action_type, inputs, context): the catalogue's 13 types with
    their sample inputs; 5 generated vendor types whose types match 10 to 41 of the
    generated rules (with bulk, financial and external inputs, a closed deal); a catalogue
    type with a partner address, and a type no rule matches."""
    from zakops.catalogue import ACTION_CATALOGUE

    cases = [("catalogue", entry.action_type, entry.inputs, {}) for entry in ACTION_CATALOGUE]
    cases += [
        ("vendor", "VENDOR41.DO_THING_11", {"to": "ops@partner41.com", "amount": 75000}, {}),
        ("vendor", "vendor42.do_thing_0", {"note": "lower case"}, {"deal_stage": "closed"}),
        ("vendor", "VENDOR18.DO_THING_12", {"amount": 50000, "currency": "EUR"}, {}),
        ("vendor", "VENDOR13.DO_THING_9", {"recipients": [f"user{n}@client.example" for n in range(12)]}, {}),
        ("vendor", "VENDOR8.DO_THING_3", {"to": "ops@partner8.com", "subject": "Renewal"}, {}),
        ("other", "COMMUNICATION.SEND_EMAIL", {"to": "Ann <ceo@partner0.com>", "amount": "12,500"},
         {"is_test_mode": True}),
        ("other", "UNKNOWN.NEW_ACTION", {"note": "no rule matches"}, {}),
    ]
    return cases


def rules_add(count: int) -> None:
    from django.db import transaction

    from risk.models import RiskRule
    from risk.rulebook import rulebook_changed

    rules = [RiskRule(**spec) for spec in generated_rules(count)]
    for rule in rules:
        rule.full_clean(validate_unique=False)  # the admin's validators: patterns compile
    with transaction.atomic():
        RiskRule.objects.bulk_create(rules, batch_size=500)
        rulebook_changed()


def rules_remove() -> None:
    from django.db import transaction

    from risk.models import RiskRule
    from risk.rulebook import rulebook_changed

    with transaction.atomic():
        RiskRule.objects.filter(name__startswith=RULE_PREFIX).delete()
        rulebook_changed()


def rulebook_settle(timeout: float = 10.0) -> bool:
    """Wait until the cached rule book stays the same object for half a second (on
    PostgreSQL: the LISTEN thread is connected and our own change's NOTIFY has arrived),
    so that the timing measures the cached path. False if it never settles."""
    from risk.rulebook import rulebook_current

    deadline = time.monotonic() + timeout
    book, since = rulebook_current(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        current = rulebook_current()
        if current is not book:
            book, since = current, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            return True
    return False


def time_assessor(cases, rounds: int, warmup: int) -> dict:
    """Microseconds per call: every call timed on its own, over `rounds` passes of the cases."""
    from risk.rulebook import rulebook_current
    from risk.services import risk_assess

    for _ in range(warmup):
        for _group, action_type, inputs, context in cases:
            risk_assess(action_type=action_type, inputs=inputs, context=context)
    settled = rulebook_settle()
    gc.collect()  # start the timing with no garbage pending
    book = rulebook_current()
    clock = time.perf_counter_ns
    per_case = [[] for _ in cases]
    for _ in range(rounds):
        for samples, (_group, action_type, inputs, context) in zip(per_case, cases):
            start = clock()
            risk_assess(action_type=action_type, inputs=inputs, context=context)
            samples.append(clock() - start)
    everything = sorted(ns for samples in per_case for ns in samples)
    groups = {}
    for samples, (group, action_type, _, _) in zip(per_case, cases):
        entry = groups.setdefault(group, {"samples": [], "candidates": []})
        entry["samples"].extend(samples)
        entry["candidates"].append(len(book.candidates(action_type)))
    slowest = max(range(len(cases)), key=lambda i: statistics.median(per_case[i]))
    return {
        "rules": len(book.rules),
        "calls": len(everything),
        "median": statistics.median(everything) / 1000,
        "p95": common.percentile(everything, 0.95) / 1000,
        "mean": statistics.fmean(everything) / 1000,
        "slowest": (  # (action type, median µs, rules whose type matches)
            cases[slowest][1],
            statistics.median(per_case[slowest]) / 1000,
            len(book.candidates(cases[slowest][1])),
        ),
        "groups": {
            group: {
                "calls": len(entry["candidates"]),
                "median": statistics.median(entry["samples"]) / 1000,
                "matching": (min(entry["candidates"]), max(entry["candidates"])),
            }
            for group, entry in groups.items()
        },
        "settled": settled,
        "reloaded": rulebook_current() is not book,
    }


def time_load() -> float:
    """Median milliseconds to load the rule book: one query and compiling every rule."""
    from risk.rulebook import rulebook_load

    return statistics.median(timeit.repeat(rulebook_load, number=1, repeat=5)) * 1000


def report_assessor(label: str, figures: dict, target: float) -> None:
    verdict = "met" if figures["median"] < target else "NOT met"
    print(
        f"{label}: {figures['rules']} enabled rules, {figures['calls']:,} calls\n"
        f"  median {figures['median']:.2f} µs, p95 {figures['p95']:.2f} µs, mean {figures['mean']:.2f} µs "
        f"(target: median < {target:g} µs, {verdict})"
    )
    for group, entry in figures["groups"].items():
        low, high = entry["matching"]
        print(
            f"  {group + ' types':<16} ({entry['calls']:>2} per pass): median {entry['median']:6.2f} µs, "
            f"rules whose type matches: {low}-{high}"
        )
    action_type, median, matching = figures["slowest"]
    print(f"  slowest call: {action_type}, median {median:.2f} µs; rules whose type matches: {matching}")
    print(f"  rule book load (query + compile): {figures['load_ms']:.1f} ms")
    if not figures["settled"] or figures["reloaded"]:
        print("  warning: the rule book reloaded during the timing; figures include database reads")


def bench_assessor(args) -> dict:
    common.heading("1. risk_assess() in process")
    cases = assess_cases()
    types = len({action_type.upper() for _, action_type, _, _ in cases})
    print(f"{len(cases)} calls per pass over {types} action types; {args.warmup} warm-up passes, {args.rounds} timed.")
    results = {}
    results["default"] = time_assessor(cases, args.rounds, args.warmup)
    results["default"]["load_ms"] = time_load()
    report_assessor("(a) default rules", results["default"], TARGET_DEFAULT_US)
    speedup = OLD_ASSESS_US / results["default"]["median"]
    print(f"  old design: ~{OLD_ASSESS_US:g} µs with 6 rules -> {speedup:.1f}x faster")

    started = time.monotonic()
    rules_add(args.rules)
    print(f"\nadded {args.rules:,} generated rules in {time.monotonic() - started:.1f} s (validated, bulk insert)")
    try:
        results["many"] = time_assessor(cases, args.rounds, args.warmup)
        results["many"]["load_ms"] = time_load()
        report_assessor(f"(b) default + {args.rules:,} generated rules", results["many"], TARGET_MANY_US)
    finally:
        rules_remove()
    return results


# --- 2. the HTTP endpoint under gunicorn -----------------------------------------------

WRK_LUA = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"

""" + common.WRK_DONE_LUA


def bench_http(args, env: dict) -> dict:
    common.heading(f"2. POST {ENDPOINT} under gunicorn")
    token = common.service_token(env)
    port = common.free_port(args.port)
    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-http-"))
    try:
        script = folder / "assess.lua"
        script.write_text(WRK_LUA.format(body=json.dumps(json.dumps(REQUEST_BODY)), token=token))
        with common.gunicorn(env, port, args.workers, folder) as base_url:
            status, body = common.http_call(f"{base_url}{ENDPOINT}", body=REQUEST_BODY, token=token)
            print(f"gunicorn -w {args.workers} on 127.0.0.1:{port}; one request first: HTTP {status} {body[:160]}")
            if status != 200:
                raise common.BenchError(f"{ENDPOINT} answered {status}, not 200; not loading it")
            if args.http_warmup > 0:
                common.wrk_run(args, f"{base_url}{ENDPOINT}", script, args.http_warmup)
            load = f"-t{args.threads} -c{args.connections} -d{args.seconds:g}s"
            print(f"wrk {load} (after a {args.http_warmup:g} s warm-up):")
            figures, output = common.wrk_run(args, f"{base_url}{ENDPOINT}", script, args.seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    common.wrk_print(output)
    print(
        f"  {figures['rps']:,.0f} req/s, p50 {figures['p50_us'] / 1000:.2f} ms, p99 {figures['p99_us'] / 1000:.2f} ms, "
        f"non-2xx/3xx {figures['non2xx']:.0f}, socket errors {figures['errors']:.0f}\n"
        f"  old design: ~{OLD_HTTP_RPS:,.0f} req/s without authentication -> {figures['rps'] / OLD_HTTP_RPS:.2f}x"
    )
    return figures


# --- summary ---------------------------------------------------------------------------


def assess_rows(label: str, figures: dict, target: float) -> list:
    verdict = "met" if figures["median"] < target else "NOT met"
    rows = [
        (f"assess, {label}: median", f"{figures['median']:.2f} µs", f"target < {target:g} µs: {verdict}"),
        (f"assess, {label}: p95", f"{figures['p95']:.2f} µs", ""),
    ]
    vendor = figures["groups"].get("vendor")
    if vendor and figures["rules"] > 100:
        low, high = vendor["matching"]
        action_type, median, matching = figures["slowest"]
        rows += [
            (f"assess, {label}: vendor types", f"{vendor['median']:.2f} µs", f"median; {low}-{high} rules match"),
            (f"assess, {label}: slowest type", f"{median:.2f} µs", f"median; {action_type}, {matching} rules match"),
        ]
    load = f"{figures['load_ms']:.1f} ms"
    rows.append((f"rule book load, {figures['rules']} rules", load, "once per change, per process"))
    return rows


def http_rows(args, http: dict) -> list:
    return [
        (f"HTTP assess-risk, {args.workers} workers", f"{http['rps']:,.0f} req/s",
         f"old ~{OLD_HTTP_RPS:,.0f} req/s without auth: {http['rps'] / OLD_HTTP_RPS:.2f}x"),
        ("HTTP p50 / p99 latency", f"{http['p50_us'] / 1000:.2f} / {http['p99_us'] / 1000:.2f} ms",
         f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s"),
        ("HTTP non-2xx/3xx / socket errors", f"{http['non2xx']:.0f} / {http['errors']:.0f}",
         f"of {http['requests']:,.0f} requests"),
    ]


def in_process_rows(args, results: dict) -> list:
    rows = []
    assess = results.get("assess", {})
    if "default" in assess:
        rows += assess_rows(f"{assess['default']['rules']} default rules", assess["default"], TARGET_DEFAULT_US)
        speedup = OLD_ASSESS_US / assess["default"]["median"]
        rows.append(("old design, 6 rules", f"~{OLD_ASSESS_US:g} µs", f"now {speedup:.1f}x faster"))
    if "many" in assess:
        rows += assess_rows(f"{assess['many']['rules']} rules", assess["many"], TARGET_MANY_US)
    return rows


# --- main ------------------------------------------------------------------------------


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead of scratch PostgreSQL")
    common.add_shared_arguments(
        parser, database_group=where,
        database_help=(
            "run on this database as it is (default: DATABASE_URL if set, else a scratch PostgreSQL database)"
        ),
        port=8765, seconds_help="wrk duration (default 10)", warmup_help="seconds of wrk before the measured run",
    )
    parser.add_argument("--rules", type=int, default=1000, help="generated rules for (b) (default 1000)")
    parser.add_argument("--rounds", type=int, default=2000, help="timed passes over the 20 calls (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed passes first (default 200)")
    parser.add_argument("--skip-assess", action="store_true", help="only the HTTP part")
    common.add_final_arguments(parser)
    return parser.parse_args()


def measure(args, results: dict) -> None:
    with database(args) as db:
        env = common.django_start(db, "wrk and gunicorn")
        try:
            if not args.skip_assess:
                results["assess"] = bench_assessor(args)
            if "http_skipped" not in results:
                results["http"] = bench_http(args, env)
        finally:
            if not db.scratch:
                common.token_revoke()


def main() -> int:
    args = arguments()
    return common.bench_main(
        args, wrk_seconds=args.seconds + args.http_warmup, measure=measure,
        in_process_rows=in_process_rows, http_rows=http_rows, http_name="HTTP assess-risk",
    )


if __name__ == "__main__":
    sys.exit(main())
