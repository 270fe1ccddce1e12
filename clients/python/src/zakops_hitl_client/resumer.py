"""The resumer: resumes every paused thread of a LangGraph graph whose approval requests
are decided, polling every few seconds. Embed `run_resumer(graph, client)`, or run

    python -m zakops_hitl_client.resumer --graph myagent.graph:graph \\
        --base-url http://127.0.0.1:8000 --token "$HITL_TOKEN"

where `myagent.graph:graph` names a compiled graph with a durable checkpointer (the one
the agent itself uses). With `--listen 127.0.0.1:8700` and the engine webhook channel's
secret in `HITL_WEBHOOK_SECRET`, it also receives the decisions the server pushes
(`zakops_hitl_client.receiver`) and starts a pass the moment one arrives; polling stays
the fallback for a push that is late or lost. Stopped and started again, it picks up where it was: what is
paused and decided lives in the checkpointer and on the server, not in the resumer.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import threading
import time
from typing import Any

from zakops_hitl_client.client import HitlClient
from zakops_hitl_client.errors import HitlError
from zakops_hitl_client.langgraph import resume_all
from zakops_hitl_client.receiver import serve_decisions

log = logging.getLogger("zakops_hitl_client.resumer")


def run_resumer(graph: Any, client: HitlClient, *, interval: float = 2.0, stop: threading.Event | None = None,
                wake: threading.Event | None = None, thread_ids: list[str] | None = None) -> None:
    """Resume decided threads every `interval` seconds until `stop` is set. Setting `wake`
    (a webhook receiver told of a decision) starts the next pass at once. An error of one
    pass (the server or the checkpointer's database unreachable) is logged and the next
    pass tries again; a thread that fails does not stop the others (see resume_all)."""
    stop = stop or threading.Event()
    wake = wake or threading.Event()
    while not stop.is_set():
        wake.clear()
        try:
            for thread in resume_all(graph, client, thread_ids):
                log.info("resumed thread %s", thread)
        except HitlError as exc:
            log.warning("resumer pass failed: %s", exc)
        except Exception:  # the checkpointer's database, say: the next pass tries again
            log.exception("resumer pass failed")
        _sleep(stop, wake, interval)


def _sleep(stop: threading.Event, wake: threading.Event, seconds: float) -> None:
    """Until `seconds` pass, `stop` is set or `wake` is set."""
    ends = time.monotonic() + seconds
    while not (stop.is_set() or wake.is_set()) and time.monotonic() < ends:
        wake.wait(min(0.05, max(ends - time.monotonic(), 0)))


def load_graph(spec: str) -> Any:
    """`package.module:attribute` -> the object; a callable attribute is called (a factory)."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise SystemExit(f"--graph wants module:attribute, not {spec!r}")
    target = getattr(importlib.import_module(module_name), attribute)
    return target() if callable(target) and not hasattr(target, "get_state") else target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zakops_hitl_client.resumer", description=__doc__.split("\n")[0])
    parser.add_argument("--graph", required=True, help="module:attribute of the compiled graph (or a factory)")
    parser.add_argument("--base-url", default=os.environ.get("HITL_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("HITL_TOKEN", ""), help="default: $HITL_TOKEN")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument(
        "--listen", metavar="HOST:PORT", default="",
        help="receive the engine webhook's pushed decisions here and resume at once (needs HITL_WEBHOOK_SECRET)",
    )
    args = parser.parse_args(argv)
    if not args.token:
        raise SystemExit("a token is needed: --token or HITL_TOKEN")
    secret = os.environ.get("HITL_WEBHOOK_SECRET", "")
    if args.listen and not secret:
        raise SystemExit("--listen needs the engine webhook channel's secret in HITL_WEBHOOK_SECRET")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    graph = load_graph(args.graph)
    with HitlClient(args.base_url, args.token) as client:
        if args.once:
            for thread in resume_all(graph, client):
                log.info("resumed thread %s", thread)
            return
        wake = threading.Event()
        if args.listen:
            host, _, port = args.listen.rpartition(":")
            if not port.isdigit():
                raise SystemExit(f"--listen wants HOST:PORT, not {args.listen!r}")
            server = serve_decisions(secret, on_event=lambda event: wake.set(), host=host or "127.0.0.1", port=int(port))
            log.info("receiving pushed decisions on http://%s:%s/", *server.server_address[:2])
        try:
            run_resumer(graph, client, interval=args.interval, wake=wake)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
