"""Checkpoint save and get-latest in process beside their floor (the same statements sent
alone through psycopg) and LangGraph's PostgresSaver, measured in the same run, what the
save's floor is made of, and `POST actions/{id}/checkpoints` under the app server with wrk.

    .venv/bin/python bench/checkpoints.py [--quick] [--seconds 10] [--workers 2] [--rounds 5] [--round-calls 400]
"""

import contextlib
import gc
import json
import os
import random
import statistics
import sys
import time
import uuid
from importlib.metadata import version

import harness  # bench/harness.py and serving.py: this script's folder is first on sys.path
import serving

TARGET_RATIO = 1.0  # ours / LangGraph's PostgresSaver, p50, measured in the same run
FLOOR_RATIO = 1.1  # a save / its own statement sent alone through psycopg, p50, measured in the same run

ACTION_PREFIX = "bench-ckpt-"  # every action the bench creates; deleted by prefix on a given database
STEP_NAMES = ("plan", "fetch_documents", "draft_email", "review", "send")
ENDPOINT = "/api/hitl/actions/{action_id}/checkpoints"


# --- the data --------------------------------------------------------------------------


def checkpoint_state(step: int) -> dict:
    """About 2 KB of an agent's state between two steps: the deal, a short conversation
    with a tool call, working variables, pending steps, retry bookkeeping."""
    return {
        "graph": "deal_outreach",
        "graph_version": 3,
        "step": step,
        "node": STEP_NAMES[step % len(STEP_NAMES)],
        "deal": {
            "deal_id": "DL-0042",
            "name": "Müller Präzisionstechnik GmbH",
            "stage": "loi",
            "enterprise_value_eur": 12_500_000,
            "owner": "ops@zakops.example",
            "tags": ["manufacturing", "dach", "founder-led"],
        },
        "messages": [
            {"role": "system", "content": "You prepare outreach for a sell-side M&A process. Be concise and factual."},
            {"role": "user", "content": "Draft the follow-up to the buyer list after the LOI call on Tuesday."},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "call_7f3a", "name": "crm.lookup_contacts",
                     "args": {"deal_id": "DL-0042", "segment": "strategic"}},
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_7f3a",
                "content": json.dumps([
                    {"name": "Anna Schmidt", "email": "a.schmidt@buyer-one.example", "company": "Buyer One AG"},
                    {"name": "Luis García", "email": "lgarcia@buyer-two.example", "company": "Buyer Two SL"},
                    {"name": "Chen Wei", "email": "chen.wei@buyer-three.example", "company": "Buyer Three Ltd"},
                ]),
            },
            {
                "role": "assistant",
                "content": (
                    "Dear {first_name}, thank you for joining Tuesday's call. As discussed, we attach the "
                    "teaser and our NDA. Management presentations are planned for the weeks of 8 and 15 "
                    "December; please let us know your preferred slot and the names of your attendees by "
                    "Friday. Kind regards, the ZakOps deal team"
                ),
            },
        ],
        "variables": {
            "recipients": ["a.schmidt@buyer-one.example", "lgarcia@buyer-two.example", "chen.wei@buyer-three.example"],
            "subject": "Müller Präzisionstechnik: next steps after the LOI",
            "template": "follow_up_v2",
            "language": "en",
            "attachments": [{"name": "teaser.pdf", "bytes": 482113}, {"name": "nda.pdf", "bytes": 91020}],
            "approval_required": True,
            "risk_level": "high",
        },
        "pending": [
            {"node": "review", "reason": "external email to 3 recipients"},
            {"node": "send", "after": "review"},
        ],
        "retry": {"attempt": 1, "max_attempts": 3, "backoff_seconds": [1, 4, 16], "last_error": None},
        "usage": {"model": "large-model-2026-10", "prompt_tokens": 1843, "completion_tokens": 212},
        "timestamps": {"started": "2026-11-24T09:14:03Z", "last_step": "2026-11-24T09:14:41Z"},
    }


def data_size(data: dict) -> int:
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def seed(ids: list[str], per_action: int) -> None:
    """The actions, and `per_action` checkpoints on each with sequence numbers 0..n-1."""
    from django.db import connection, transaction

    from zakops.models import Action, ExecutionCheckpoint

    correlations = {action_id: uuid.uuid4() for action_id in ids}
    actions = [
        Action(action_id=action_id, action_type="COMMUNICATION.SEND_EMAIL", status="PROCESSING",
               correlation_id=correlations[action_id])
        for action_id in ids
    ]
    checkpoints = [
        ExecutionCheckpoint(
            correlation_id=correlations[action_id],
            action_id=action_id,
            checkpoint_name=STEP_NAMES[seq % len(STEP_NAMES)],
            checkpoint_type="state",
            checkpoint_data=checkpoint_state(seq),
            sequence_number=seq,
            status="active",
        )
        for action_id in ids
        for seq in range(per_action)
    ]
    with transaction.atomic():
        Action.objects.bulk_create(actions, batch_size=1000)
        ExecutionCheckpoint.objects.bulk_create(checkpoints, batch_size=1000)
    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would have soon
        cursor.execute("ANALYZE zakops.actions, zakops.execution_checkpoints")


def sequences_intact(ids: list[str]) -> tuple[int, int]:
    """(actions whose sequence numbers are exactly 0..n-1, actions with checkpoints)."""
    from django.db.models import Count, Max

    from zakops.models import ExecutionCheckpoint

    rows = (
        ExecutionCheckpoint.objects.filter(action_id__in=ids)
        .values("action_id")
        .annotate(n=Count("id"), top=Max("sequence_number"), distinct=Count("sequence_number", distinct=True))
    )
    rows = list(rows)
    good = sum(1 for row in rows if row["n"] == row["distinct"] == row["top"] + 1)
    return good, len(rows)


def checkpoint_count(action_id: str) -> int:
    from zakops.models import ExecutionCheckpoint

    return ExecutionCheckpoint.objects.filter(action_id=action_id).count()


# --- 1. in process, beside LangGraph's PostgresSaver -----------------------------------


def saver(data: dict):
    """A call that saves `data` as the next "step" checkpoint of the action it is given."""
    from checkpoints.services import checkpoint_save

    def save(action_id: str) -> None:
        checkpoint_save(action_id=action_id, checkpoint_name="step", checkpoint_data=data, checkpoint_type="state")

    return save


def reader():
    """A call that reads the newest active checkpoint of the action it is given; it counts misses."""
    from checkpoints.selectors import checkpoint_latest

    def latest(action_id: str) -> None:
        if checkpoint_latest(action_id=action_id) is None:
            latest.misses += 1

    latest.misses = 0
    return latest


class LangGraphThreads:
    """LangGraph's PostgresSaver on a database of its own, with its threads' newest
    checkpoint ids and channel versions, so that each put continues its thread as a graph
    run would: the parent is the thread's newest checkpoint, the "state" channel gets the
    next version, and the "agent" node has seen the previous one."""

    CHANNEL = "state"  # the whole ~2 KB state in one channel: one blob per put, as our one row

    def __init__(self, saver_, data: dict):
        self.saver, self.data = saver_, data
        self.newest = {}  # thread_id -> (checkpoint id, channel version)
        self.steps = {}
        self.misses = 0  # get_tuple calls that found no state

    def put(self, thread_id: str) -> None:
        from langgraph.checkpoint.base import empty_checkpoint

        parent_id, version = self.newest.get(thread_id, (None, None))
        new_version = self.saver.get_next_version(version, None)
        step = self.steps.get(thread_id, -1) + 1
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {self.CHANNEL: self.data}
        checkpoint["channel_versions"] = {self.CHANNEL: new_version}
        checkpoint["versions_seen"] = {"agent": {self.CHANNEL: version}} if version else {}
        checkpoint["updated_channels"] = [self.CHANNEL]
        configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
        if parent_id:
            configurable["checkpoint_id"] = parent_id
        self.saver.put(
            {"configurable": configurable},
            checkpoint,
            {"source": "loop", "step": step, "parents": {}},
            {self.CHANNEL: new_version},
        )
        self.newest[thread_id] = (checkpoint["id"], new_version)
        self.steps[thread_id] = step

    def get_tuple(self, thread_id: str) -> None:
        found = self.saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        if found is None or self.CHANNEL not in found.checkpoint["channel_values"]:
            self.misses += 1

    def seed(self, thread_ids: list[str], per_thread: int) -> None:
        for _ in range(per_thread):
            for thread_id in thread_ids:
                self.put(thread_id)


@contextlib.contextmanager
def langgraph_saver(db_url: str):
    """PostgresSaver (as its from_conn_string makes it: autocommit, prepared statements,
    dict rows) on a scratch database beside `db_url`'s, set up, and dropped at the end."""
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError:
        raise harness.BenchError(
            "langgraph-checkpoint-postgres is not installed: .venv/bin/python -m pip install -r bench/requirements.txt"
        ) from None
    name = f"{harness.SCRATCH_PREFIX}_langgraph_{os.getpid()}"
    with harness.scratch_postgres(name, server=db_url) as url, PostgresSaver.from_conn_string(url) as saver_:
        saver_.setup()
        yield saver_, name


def langgraph_sizes(saver_) -> str:
    with saver_.conn.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM checkpoints) AS checkpoints, (SELECT count(*) FROM checkpoint_blobs) AS blobs,"
            " (SELECT avg(octet_length(blob))::int FROM checkpoint_blobs) AS blob_bytes,"
            " (SELECT avg(octet_length(checkpoint::text) + octet_length(metadata::text))::int FROM checkpoints) AS row_bytes"
        )
        row = cursor.fetchone()
    return (f"{row['checkpoints']:,} checkpoints rows and {row['blobs']:,} checkpoint_blobs rows; a blob "
            f"{row['blob_bytes']:,} bytes (msgpack), a checkpoint row's JSON {row['row_bytes']:,} bytes")


class Floor:
    """The app's own statements sent alone through psycopg: the SQL text and parameters
    that checkpoint_save() and checkpoint_latest() send (captured from a call), on a bare
    psycopg cursor, in autocommit, prepared. Each call builds its parameters as the app
    does (the state serialised with the same json.dumps, the derived correlation, the
    time), so what is left between ours and the floor is the app's Python around it.
    `connection`: a psycopg connection (Django's own by default)."""

    def __init__(self, data: dict, sample_action: str, connection=None):
        import psycopg
        from django.db import connection as django_connection

        from checkpoints.selectors import checkpoint_latest
        from checkpoints.services import checkpoint_save

        self.data = data
        save = harness.captured(lambda: checkpoint_save(
            action_id=sample_action, checkpoint_name="step", checkpoint_data=data, checkpoint_type="state"))
        latest = harness.captured(lambda: checkpoint_latest(action_id=sample_action))
        (self.save_sql, save_params), (self.latest_sql, latest_params) = save[-1], latest[-1]
        if len(save_params) != 9 or len(latest_params) != 2:
            raise harness.BenchError(f"the app's statements changed shape: {save[-1][0]!r}, {latest[-1][0]!r}")
        django_connection.ensure_connection()
        # A plain psycopg cursor: server-side binding, as the app's (Django's own binds on the client).
        self.cursor = psycopg.Cursor(connection or django_connection.connection)

    def save(self, action_id: str) -> None:
        from django.utils import timezone

        from zakops.models import derived_correlation

        serialised = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        params = [action_id, "step", "state", serialised, None, derived_correlation(action_id), None, None,
                  timezone.now()]
        self.cursor.execute(self.save_sql, params, prepare=True)
        self.cursor.fetchone()

    def latest(self, action_id: str) -> None:
        from django.utils import timezone

        self.cursor.execute(self.latest_sql, [action_id, timezone.now()], prepare=True)
        row = self.cursor.fetchone()
        if isinstance(row[6], str):  # checkpoint_data: Django's connection hands jsonb over as text, ours decodes it
            json.loads(row[6])

    def round_trip(self, action_id: str) -> None:
        self.cursor.execute("SELECT 1", prepare=True)
        self.cursor.fetchone()


def interleaved(name: str, sides: dict, args, rng) -> dict:
    """`args.rounds` rounds of `args.round_calls` calls a side, interleaved call by call
    (A B C A B C …, through harness.interleaved, one call of each side a turn), each call
    on an action or thread picked at random: a burst of someone else's load falls on every
    side alike. `sides` maps a name to (call, ids); the first is ours. Per side: the p50
    of each round, their median and the p99 of every call."""
    for _ in range(args.warmup):
        for call, ids in sides.values():
            call(rng.choice(ids))
    names = list(sides)
    print(f"\n{name}: {args.rounds} rounds of {args.round_calls} calls a side, interleaved call by call "
          f"({' '.join(names)}, after {args.warmup} untimed calls a side); p50 ms per round")
    print("  " + f"{'round':<6}" + "".join(f"{n:>14}" for n in names) + "".join(f"{'ours/' + n:>19}" for n in names[1:]))
    clock = time.perf_counter_ns

    def side(key):
        call, ids = sides[key]

        def one(_turn):
            action_id = rng.choice(ids)
            start = clock()
            call(action_id)
            return (clock() - start) / 1e6

        return one

    calls, round_p50s = {n: [] for n in names}, {n: [] for n in names}

    def turn(number, figures):
        for n in names:
            calls[n].append(figures[n])
        if number % args.round_calls:
            return
        for n in names:
            round_p50s[n].append(statistics.median(calls[n][-args.round_calls:]))
        ours = round_p50s[names[0]][-1]
        print("  " + f"{number // args.round_calls:<6}" + "".join(f"{round_p50s[n][-1]:>14.3f}" for n in names)
              + "".join(f"{ours / round_p50s[n][-1]:>18.2f}x" for n in names[1:]), flush=True)

    gc.collect()  # start the timing with no garbage pending
    # Every other turn in reverse order (A B C, C B A, …): a call runs faster right after
    # one that warmed the same code and data (the floor after ours serialises the same
    # state through the same psycopg paths) and slower right after LangGraph's, so a fixed
    # order would favour whichever side always follows ours.
    harness.interleaved({n: side(n) for n in names}, args.rounds * args.round_calls, alternate=True, each_round=turn)
    return {n: {"p50s": round_p50s[n], "p50": statistics.median(round_p50s[n]),
                "p99": harness.percentile(sorted(calls[n]), 0.99), "calls": len(calls[n])} for n in names}


def verdicts(figures: dict, ours: str, aims: dict) -> dict:
    """Each side's median of round p50s and pooled p99, then ours against each side in
    `aims` (the median ratio of the round p50s, with the verdict when an aim is given)."""
    for key, side in figures.items():
        print(f"  {key}: p50 {side['p50']:.3f} ms (median of the round p50s), p99 {side['p99']:.3f} ms "
              f"({side['calls']:,} calls)")
    ratios = {}
    for other, aim in aims.items():
        ratios[other] = harness.compared(f"  {ours} / {other}", figures[ours]["p50s"], figures[other]["p50s"],
                                         unit="ms", digits=3, aim=aim, other=other)
    return ratios


def time_deep(depth: int, data: dict, args) -> dict:
    """p50 ms of save and get-latest on one action that already has `depth` checkpoints."""
    action_id = f"{ACTION_PREFIX}deep"
    seed([action_id], depth)
    calls, warmup = max(args.round_calls // 4, 50), max(args.warmup // 4, 10)
    deep = {"depth": depth}
    for key, call in (("save", saver(data)), ("latest", reader())):
        for _ in range(warmup):
            call(action_id)
        deep[key] = statistics.median(harness.time_calls(call, [action_id] * calls))
    print(
        f"\none action with {depth:,} checkpoints ({action_id}), {calls} calls each: "
        f"save p50 {deep['save']:.3f} ms, get-latest p50 {deep['latest']:.3f} ms\n"
        f"  (the hitl_checkpoints_action_sequence index keeps both to one index read, whatever the history)"
    )
    return deep


def seed_both(args, ids: list[str], threads: LangGraphThreads, thread_ids: list[str], lg_name: str, data: dict):
    from zakops.models import ExecutionCheckpoint

    started = time.monotonic()
    seed(ids, args.per_action)
    print(
        f"ours: seeded {len(ids):,} actions with {args.per_action} checkpoints each in "
        f"{time.monotonic() - started:.1f} s (bulk insert, then ANALYZE); "
        f"{ExecutionCheckpoint.objects.count():,} checkpoints in the table\n"
        f"  a save writes one execution_checkpoints row: checkpoint_data {data_size(data):,} bytes of JSON (jsonb)"
    )
    started = time.monotonic()
    threads.seed(thread_ids, args.per_action)
    with threads.saver.conn.cursor() as cursor:
        cursor.execute("ANALYZE checkpoints, checkpoint_blobs")
    print(
        f"theirs: langgraph-checkpoint-postgres {version('langgraph-checkpoint-postgres')}, PostgresSaver on "
        f"scratch database {lg_name} (same server, setup() run), from_conn_string (autocommit, prepared "
        f"statements); seeded {len(thread_ids):,} threads x {args.per_action} puts in "
        f"{time.monotonic() - started:.1f} s, then ANALYZE: {langgraph_sizes(threads.saver)}\n"
        f"  a put writes, in one pipeline (one round trip): one checkpoint_blobs row (the same state, "
        f"msgpack, channel {LangGraphThreads.CHANNEL!r}) and one checkpoints row (the checkpoint's "
        f"versions, ids and metadata as jsonb); get_tuple reads the thread's newest checkpoints row "
        f"and joins its blobs and pending writes"
    )


@contextlib.contextmanager
def without_wal_flush(*connections):
    """synchronous_commit off on these psycopg connections for the block: a commit no longer
    waits for its WAL to reach the disk. A diagnostic, not a setting to deploy (such a
    commit can be lost in a crash, though never half-written): it takes the disk's flush
    latency, which other people's writes inflate, out of a comparison of everything else."""
    for conn in connections:
        conn.execute("SET synchronous_commit = off")
    try:
        yield
    finally:
        for conn in connections:
            conn.execute("RESET synchronous_commit")


def compare_saves(title: str, sides: dict, args, rng) -> dict:
    figures = interleaved(title, sides, args, rng)
    result = {"figures": figures, "ratios": verdicts(figures, "ours", {"floor": FLOOR_RATIO, "put": TARGET_RATIO})}
    result["floor_to_put"] = figures["floor"]["p50"] / figures["put"]["p50"]
    print(f"  floor / put {result['floor_to_put']:.2f}x")
    return result


def bench_in_process(args, db, ids: list[str]) -> dict:
    harness.heading("1. checkpoint_save() and checkpoint_latest() in process, beside their floor and "
                    "LangGraph's PostgresSaver")
    harness.load_print()
    data = checkpoint_state(7)
    rng = random.Random(1)
    results = {}
    latest = reader()
    with langgraph_saver(db.url) as (lg_saver, lg_name):
        threads = LangGraphThreads(lg_saver, data)
        thread_ids = [f"bench-thread-{i:04d}" for i in range(len(ids))]
        seed_both(args, ids, threads, thread_ids, lg_name, data)
        floor = Floor(data, ids[0])
        print(f"floor: the app's statement through psycopg directly (autocommit, prepared), its parameters "
              f"built per call as the app builds them:\n  save:   {floor.save_sql}\n  latest: {floor.latest_sql}")
        sides = {"ours": (saver(data), ids), "floor": (floor.save, ids), "put": (threads.put, thread_ids)}
        results["save"] = compare_saves("save: checkpoint_save() | its floor | PostgresSaver.put()", sides, args, rng)
        with without_wal_flush(floor.cursor.connection, lg_saver.conn):
            results["save_unflushed"] = compare_saves(
                "the same with synchronous_commit off on both connections (no wait for the WAL flush)", sides, args,
                rng)
        figures = interleaved("get-latest: checkpoint_latest(action_id=...) | its floor | PostgresSaver.get_tuple()", {
            "ours": (latest, ids), "floor": (floor.latest, ids), "get_tuple": (threads.get_tuple, thread_ids),
            "round-trip": (floor.round_trip, ids),
        }, args, rng)
        results["latest"] = {"figures": figures, "ratios": verdicts(
            figures, "ours", {"floor": None, "get_tuple": TARGET_RATIO})}
        if latest.misses or threads.misses:
            print(f"  warning: misses, ours {latest.misses}, theirs {threads.misses}")
    if args.explain:
        results["explain"] = explain_save(data, ids)
    if args.deep > 0:
        results["deep"] = time_deep(args.deep, data, args)
    return results


AUTO_EXPLAIN = [
    "LOAD 'auto_explain'", "SET LOCAL auto_explain.log_min_duration = 0", "SET LOCAL auto_explain.log_analyze = on",
    "SET LOCAL auto_explain.log_buffers = on", "SET LOCAL auto_explain.log_nested_statements = on",
    "SET LOCAL auto_explain.log_level = 'notice'", "SET LOCAL client_min_messages = 'notice'",
]


def explain_save(data: dict, ids: list[str], runs: int = 3) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of the save's statement on the seeded table, in a
    transaction that is rolled back (so without the commit), the last of `runs` (the first
    plans the function's statements); through auto_explain, the plan of each statement
    inside hitl_checkpoint_save. Then the table's indexes, which every insert maintains."""
    import psycopg
    from django.db import connection
    from django.utils import timezone

    harness.heading("what the save's floor is made of: EXPLAIN (ANALYZE, BUFFERS) on the seeded table")
    floor = Floor(data, ids[0])
    conn, notices = connection.connection, []

    def notice(diagnostic):
        notices.append(diagnostic.message_primary or "")

    conn.add_notice_handler(notice)
    try:
        for run in range(runs):
            notices.clear()
            with contextlib.suppress(psycopg.Rollback), conn.transaction(), psycopg.ClientCursor(conn) as cursor:
                with contextlib.suppress(psycopg.Error):  # auto_explain missing: the top plan only
                    with conn.transaction():
                        for statement in AUTO_EXPLAIN:
                            cursor.execute(statement)
                action_id = ids[(run + 1) % len(ids)]
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {floor.save_sql}", [
                    action_id, "step", "state", json.dumps(data, ensure_ascii=False, separators=(",", ":")), None,
                    uuid.uuid4(), None, None, timezone.now()])
                plan = [row[0] for row in cursor.fetchall()]
                raise psycopg.Rollback()
    finally:
        conn.remove_notice_handler(notice)
    print("the call (rolled back):")
    print("\n".join(f"  {line}" for line in plan))
    nested = [n for n in notices if "Query Text:" in n and not n.split("Query Text:")[1].lstrip().startswith("EXPLAIN")]
    print(f"\ninside hitl_checkpoint_save (auto_explain, nested statements): {len(nested)} statements")
    for text in nested:
        print("\n".join(f"  {line}" for line in text.splitlines()))
    indexes = harness.sql(
        "SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid), i.indisunique"
        " FROM pg_index i WHERE i.indrelid = 'zakops.execution_checkpoints'::regclass ORDER BY 1")
    print("\nthe table's indexes, each written by every insert: " + ", ".join(
        f"{name} ({size / 1024:,.0f} KiB{', unique' if unique else ''})" for name, size, unique in indexes))
    return {"plan": plan, "nested": nested, "indexes": len(indexes)}


# --- 2. the HTTP endpoint under the app server ----------------------------------------


def report_http(figures: dict) -> None:
    print(f"  {serving.wrk_figures(figures, 'saves', (50, 99))}, {serving.wrk_errors(figures)}")


def bench_http(args, env: dict, ids: list[str]) -> dict:
    harness.heading("2. POST /api/hitl/actions/{action_id}/checkpoints under the app server")
    token = harness.service_token(env)
    body = {"checkpoint_name": "step", "checkpoint_data": checkpoint_state(7)}
    text = json.dumps(body, ensure_ascii=False)
    hot = ids[0]
    results = {}
    with harness.scratch_folder("ckpt") as folder:
        options = {"method": "POST", "body": text,
                   "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}}
        many = serving.wrk_script(folder, "many", paths=[ENDPOINT.format(action_id=i) for i in ids], **options)
        one = serving.wrk_script(folder, "one", paths=[ENDPOINT.format(action_id=hot)], **options)
        with serving.app_server(env, args.port, args.workers, folder) as base_url:
            first = serving.http_expect(base_url + ENDPOINT.format(action_id=hot), 201, "the endpoint", body=body,
                                        token=token)
            print(f"app server, {args.workers} workers, on {base_url}; body {len(text.encode()):,} bytes; "
                  f"one request first: HTTP 201 {first[:100].decode(errors='replace')}...")
            if args.http_warmup > 0:
                serving.wrk_run(args, base_url, many, args.http_warmup)
            load = serving.wrk_command(args)

            print(f"\n(a) {load}, each request on one of {len(ids):,} actions at random "
                  f"(after a {args.http_warmup:g} s warm-up):")
            results["many"] = serving.wrk_run(args, base_url, many, args.seconds, show=True)
            report_http(results["many"])

            before = checkpoint_count(hot)
            print(f"\n(b) {load}, every request on one action ({hot}, {before:,} checkpoints before):")
            results["one"] = serving.wrk_run(args, base_url, one, args.seconds, show=True)
            report_http(results["one"])
            print(f"  {hot} now has {checkpoint_count(hot):,} checkpoints")
    good, total = sequences_intact(ids)
    results["intact"] = (good, total)
    print(f"\nsequence numbers exactly 0..n-1 (no gap, no duplicate) on {good:,} of {total:,} actions")
    return results


def summary_rows(args, results: dict) -> list:
    rows = []
    in_process = results.get("in_process", {})
    for key, label in (("save", "save"), ("save_unflushed", "save, no WAL flush wait"), ("latest", "get-latest")):
        if key not in in_process:
            continue
        figures, ratios = in_process[key]["figures"], in_process[key]["ratios"]
        for other, value in ratios.items():
            rows.append((f"{label}: ours / {other}", f"{value['ratio']:.2f}x",
                         f"median of round p50s; {value['note']}"))
        rows.append((f"  {label} p50, " + " / ".join(figures), " / ".join(f"{f['p50']:.3f}" for f in figures.values())
                     + " ms", "same run, interleaved rounds"))
        rows.append((f"  {label} p99, " + " / ".join(figures), " / ".join(f"{f['p99']:.3f}" for f in figures.values())
                     + " ms", "every call of the run"))
    for key, label in (("save", "save"), ("save_unflushed", "save, no WAL flush wait")):
        if key in in_process:
            rows.append((f"{label}: floor / put", f"{in_process[key]['floor_to_put']:.2f}x", "p50s, same run"))
    if "deep" in in_process:
        deep = in_process["deep"]
        rows.append((f"{deep['depth']:,}-checkpoint action: save / latest",
                     f"{deep['save']:.3f} / {deep['latest']:.3f} ms", "p50"))
    http = results.get("http", {})
    for key, label in (("many", "HTTP save, random action"), ("one", "HTTP save, one action")):
        if key in http:
            rows += serving.wrk_rows(label, http[key], f"{args.workers} app server workers, {serving.wrk_command(args)}")
    if "intact" in http:
        good, total = http["intact"]
        rows.append(("sequence numbers intact", f"{good:,} / {total:,}", "actions with 0..n-1, no gap or duplicate"))
    return rows


def arguments():
    parser = harness.bench_parser(__doc__)
    harness.server_arguments(parser, port=8766, seconds_help="wrk duration of each HTTP run (default 10)",
                             warmup_help="seconds of wrk before the measured runs")
    parser.add_argument("--actions", type=int, default=1000, help="actions created (default 1000)")
    parser.add_argument("--per-action", type=int, default=10, help="checkpoints on each action first (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds, each side in turn (default 5)")
    parser.add_argument("--round-calls", type=int, default=400, help="timed calls a side in each round (default 400)")
    parser.add_argument(
        "--deep", type=int, default=10_000,
        help="also time save and get-latest on one action with this many checkpoints (default 10000; 0: skip)",
    )
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls a side first (default 200)")
    parser.add_argument("--no-explain", dest="explain", action="store_false",
                        help="skip EXPLAIN (ANALYZE, BUFFERS) of the save's statement")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 3 rounds of 200 calls, 50 warm-up calls, no deep action, no HTTP part")
    harness.final_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.round_calls, args.warmup, args.deep, args.skip_http = 3, 200, 50, 0, True
    return args


def measure(args, results: dict) -> None:
    with harness.bench_database(args, "ckpt") as db:
        env = harness.django_start(db, "wrk, the app server and PostgreSQL")
        ids = [f"{ACTION_PREFIX}{i:04d}" for i in range(args.actions)]
        with harness.bench_rows(db, ACTION_PREFIX, also=harness.token_revoke):
            results["in_process"] = bench_in_process(args, db, ids)
            if "http_skipped" not in results:
                results["http"] = bench_http(args, env, ids)


if __name__ == "__main__":
    args = arguments()
    sys.exit(harness.bench_main(args, measure, rows=summary_rows, http_name="HTTP save",
                                extra_seconds=2 * args.seconds + args.http_warmup))
