"""Risk assessment in process, `risk_assess()` beside the reference service's assessor
(bench/reference/assessor.py), with the default rules and with generated ones added.

    .venv/bin/python bench/risk.py [--sqlite] [--rounds 2000] [--rules 1000]
"""

import gc
import random
import statistics
import sys
import time
import timeit
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

import harness  # bench/harness.py: this script's folder is first on sys.path

sys.path.append(str(Path(__file__).resolve().parent / "reference"))
import assessor as reference  # noqa: E402  bench/reference/assessor.py, the reference service's assessor

TARGET_DEFAULT_US = 8.0  # an aim, not a measurement
TARGET_MANY_US = 100.0  # an aim, not a measurement

RULE_PREFIX = "bench_generated_"
VENDORS, THINGS = 50, 20  # 1,000 distinct types VENDOR{v}.DO_THING_{t}
LEVELS = ("low", "medium", "high", "critical")


# --- the assessors in this process -----------------------------------------------------


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


def reference_rules():
    """The reference assessor's rules, read from this database's tables as the reference
    service reads them at startup (through Django's connection here, so SQLite works too)."""
    from django.db import connection

    with connection.cursor() as cursor:
        return reference.rules_read(cursor)


def case_figures(cases, per_case: list) -> dict:
    """Median, p95 and mean µs over all calls, and the median per group of cases."""
    everything = sorted(ns for samples in per_case for ns in samples)
    groups = {}
    for samples, (group, *_rest) in zip(per_case, cases):
        groups.setdefault(group, []).extend(samples)
    return {
        "calls": len(everything),
        "samples": [ns / 1000 for ns in everything],
        "median": statistics.median(everything) / 1000,
        "p95": harness.percentile(everything, 0.95) / 1000,
        "mean": statistics.fmean(everything) / 1000,
        "group_medians": {group: statistics.median(samples) / 1000 for group, samples in groups.items()},
    }


def answers_compare(cases, book) -> list[str]:
    """Where the reference's assessment differs from ours on the cases, field by field."""
    from risk.services import risk_assess

    differences = []
    for _group, action_type, inputs, context in cases:
        ours = asdict(risk_assess(action_type=action_type, inputs=inputs, context=context))
        theirs = reference.assess(book, action_type, inputs, context)
        differences += [
            f"{action_type}: {key}: ours {ours[key]!r}, reference {theirs[key]!r}"
            for key in sorted(ours.keys() & theirs.keys())
            if ours[key] != theirs[key]
        ]
    return differences


def time_assessors(cases, rounds: int, warmup: int) -> dict:
    """Microseconds per call of ours and of the reference's assessor, every call timed on
    its own, in `rounds` interleaved passes over the cases (ours first in even rounds, the
    reference first in odd ones)."""
    from risk.rulebook import rulebook_current
    from risk.services import risk_assess

    book = reference_rules()
    assessors = {
        "ours": lambda action_type, inputs, context: risk_assess(action_type=action_type, inputs=inputs, context=context),
        "reference": lambda action_type, inputs, context: reference.assess(book, action_type, inputs, context),
    }
    for _ in range(warmup):
        for call in assessors.values():
            for _group, action_type, inputs, context in cases:
                call(action_type, inputs, context)
    settled = rulebook_settle()
    differences = answers_compare(cases, book)
    gc.collect()  # start the timing with no garbage pending
    ours_book = rulebook_current()
    clock = time.perf_counter_ns
    per_case = {name: [[] for _ in cases] for name in assessors}

    def one_pass(name: str):
        def timed(_round):
            call = assessors[name]
            for samples, (_group, action_type, inputs, context) in zip(per_case[name], cases):
                start = clock()
                call(action_type, inputs, context)
                samples.append(clock() - start)

        return timed

    harness.interleaved({name: one_pass(name) for name in assessors}, rounds, alternate=True)
    ours = case_figures(cases, per_case["ours"])
    groups = {}
    for group, action_type, _, _ in cases:
        entry = groups.setdefault(group, {"calls": 0, "candidates": []})
        entry["calls"] += 1
        entry["candidates"].append(len(ours_book.candidates(action_type)))
    slowest = max(range(len(cases)), key=lambda i: statistics.median(per_case["ours"][i]))
    ours.update(
        rules=len(ours_book.rules),
        slowest=(  # (action type, median µs, rules whose type matches)
            cases[slowest][1],
            statistics.median(per_case["ours"][slowest]) / 1000,
            len(ours_book.candidates(cases[slowest][1])),
        ),
        groups={
            group: {
                "calls": entry["calls"],
                "median": ours["group_medians"][group],
                "matching": (min(entry["candidates"]), max(entry["candidates"])),
            }
            for group, entry in groups.items()
        },
        settled=settled,
        reloaded=rulebook_current() is not ours_book,
    )
    figures = case_figures(cases, per_case["reference"])
    figures.update(rules=len(book.rules), differences=differences)
    ours["reference"] = figures
    return ours


def time_load() -> float:
    """Median milliseconds to load the rule book: one query and compiling every rule."""
    from risk.rulebook import rulebook_load

    return statistics.median(timeit.repeat(rulebook_load, number=1, repeat=5)) * 1000


def report_assessor(label: str, figures: dict, target: float) -> None:
    verdict = harness.verdict(figures["median"] < target)
    print(
        f"{label}: {figures['rules']} enabled rules, {figures['calls']:,} calls a side\n"
        f"  ours:      median {figures['median']:.2f} µs, p95 {figures['p95']:.2f} µs, mean {figures['mean']:.2f} µs "
        f"(target, an aim: median < {target:g} µs; {verdict})"
    )
    ref = figures["reference"]
    print(
        f"  reference: median {ref['median']:.2f} µs, p95 {ref['p95']:.2f} µs, mean {ref['mean']:.2f} µs "
        f"({ref['rules']} rules, bench/reference/assessor.py)"
    )
    figures["ratio"] = harness.compared("  ours/reference, time", figures["samples"], ref["samples"], unit="µs")
    for group, entry in figures["groups"].items():
        low, high = entry["matching"]
        print(
            f"  {group + ' types':<16} ({entry['calls']:>2} per pass): median ours {entry['median']:6.2f} µs, "
            f"reference {ref['group_medians'][group]:6.2f} µs; rules whose type matches: {low}-{high}"
        )
    action_type, median, matching = figures["slowest"]
    print(f"  our slowest call: {action_type}, median {median:.2f} µs; rules whose type matches: {matching}")
    print(f"  our rule book load (query + compile): {figures['load_ms']:.1f} ms")
    for line in ref["differences"]:
        print(f"  DIFFERENT {line}")
    if ref["differences"]:
        print(f"  {len(ref['differences'])} differences between the two assessments")
    else:
        print("  both assessors give the same assessment on every case")
    if not figures["settled"] or figures["reloaded"]:
        print("  warning: the rule book reloaded during the timing; figures include database reads")


def bench_assessor(args) -> dict:
    harness.heading("risk_assess() and the reference's assessor in process")
    cases = assess_cases()
    types = len({action_type.upper() for _, action_type, _, _ in cases})
    print(
        f"{len(cases)} calls per pass over {types} action types; {args.warmup} warm-up passes, "
        f"{args.rounds} timed passes a side, interleaved."
    )
    results = {}
    results["default"] = time_assessors(cases, args.rounds, args.warmup)
    results["default"]["load_ms"] = time_load()
    report_assessor("(a) default rules", results["default"], TARGET_DEFAULT_US)

    started = time.monotonic()
    rules_add(args.rules)
    print(f"\nadded {args.rules:,} generated rules in {time.monotonic() - started:.1f} s (validated, bulk insert)")
    try:
        results["many"] = time_assessors(cases, args.rounds, args.warmup)
        results["many"]["load_ms"] = time_load()
        report_assessor(f"(b) default + {args.rules:,} generated rules", results["many"], TARGET_MANY_US)
    finally:
        rules_remove()
    return results


# --- summary ---------------------------------------------------------------------------


def assess_rows(label: str, figures: dict, target: float) -> list:
    verdict = harness.verdict(figures["median"] < target)
    ref = figures["reference"]
    same = "same answers" if not ref["differences"] else f"{len(ref['differences'])} DIFFERENCES"
    rows = [
        (f"assess, {label}: median", f"{figures['median']:.2f} µs", f"target (an aim) < {target:g} µs: {verdict}"),
        (f"assess, {label}: p95", f"{figures['p95']:.2f} µs", ""),
        (f"reference, {label}: median", f"{ref['median']:.2f} µs", f"same rules, interleaved; {same}"),
        (f"assess, {label}: ours/reference", f"{figures['ratio']['ratio']:.2f}x", "median time; below 1 is faster"),
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


def summary_rows(args, results: dict) -> list:
    rows = []
    assess = results.get("assess", {})
    if "default" in assess:
        rows += assess_rows(f"{assess['default']['rules']} default rules", assess["default"], TARGET_DEFAULT_US)
    if "many" in assess:
        rows += assess_rows(f"{assess['many']['rules']} rules", assess["many"], TARGET_MANY_US)
    return rows


def arguments():
    parser = harness.bench_parser(__doc__, database=False)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead of scratch PostgreSQL")
    harness.database_argument(
        where, "run on this database as it is (default: DATABASE_URL if set, else a scratch PostgreSQL database)"
    )
    parser.add_argument("--rules", type=int, default=1000, help="generated rules for (b) (default 1000)")
    parser.add_argument("--rounds", type=int, default=2000, help="timed passes over the 20 calls, a side (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed passes first, a side (default 200)")
    harness.final_arguments(parser, skip_http=False, plus="")
    return parser.parse_args()


def measure(args, results: dict) -> None:
    with harness.bench_database(args, "risk", sqlite=True) as db:
        harness.django_start(db, "nothing else in this run")
        results["assess"] = bench_assessor(args)


if __name__ == "__main__":
    sys.exit(harness.bench_main(arguments(), measure, rows=summary_rows))
