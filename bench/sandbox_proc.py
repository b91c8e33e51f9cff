"""The sandbox served over loopback HTTP in its own process, with a control channel.

Benchmarks serve the sandbox from a child process so that the server does not share a GIL
with the client being measured (a server thread in the same process would halve both). The
child prints one JSON line when it is ready (``{"url": ..., "build_s": ..., "now": ...}``), then answers
JSON commands on stdin, one per line:

- ``{"cmd": "counts"}`` → per-API request counters (``FakeAPI.requests``), status counts and
  the number of HubSpot write requests;
- ``{"cmd": "reset"}`` → clear the counters;
- ``{"cmd": "advance", "days": N}`` → move the world's clock;
- ``{"cmd": "world"}`` → what the world holds per Singer stream (``peers/world_counts.py``);
- ``{"cmd": "quit"}`` → stop serving and exit.

``SandboxProcess`` is the parent's handle: ``with SandboxProcess(companies=…) as sp:
sp.url; sp.counts()``.

Run it alone: ``python bench/sandbox_proc.py --companies 1000``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import Any


def _serve(args: argparse.Namespace) -> None:
    from hub.sandbox.world import advance, build_sandbox

    started = time.perf_counter()
    live = None
    if args.live:
        # As `hub sandbox serve` runs it: the world ends now and its clock follows wall time
        # (clients such as tap-stripe window their reads on their own clock).
        live = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    sandbox = build_sandbox(
        companies=args.companies,
        seed=args.seed,
        start=live,
        enforce_limits=args.limits,
        time_scale=args.time_scale,
    )
    if live:
        sandbox.world.clock.run()
    build_s = time.perf_counter() - started
    if args.latency:
        # A real API's round trip: every response waits this long (server threads, so
        # concurrent requests wait side by side, as they would over the network).
        for api_name in sandbox.apis:
            sandbox.inject(api_name, "slow", count=-1, params={"delay": args.latency})
    server = sandbox.serve("127.0.0.1", 0)
    ready = {
        "url": server.url,
        "build_s": round(build_s, 3),
        "now": sandbox.world.now().isoformat(),
    }
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
        except ValueError:
            print(json.dumps({"error": "bad command"}), flush=True)
            continue
        name = cmd.get("cmd")
        if name == "counts":
            out: dict[str, Any] = {}
            for api_name, api in sandbox.apis.items():
                out[api_name] = {
                    "requests": dict(api.requests),
                    "total": api.total_requests(),
                    "status": {str(k): v for k, v in api.status_counts.items()},
                }
            hubspot = sandbox.apis.get("hubspot")
            out["hubspot_writes"] = len(getattr(hubspot, "writes", []) or [])
            print(json.dumps(out), flush=True)
        elif name == "reset":
            sandbox.reset_counts()
            print(json.dumps({"ok": True}), flush=True)
        elif name == "advance":
            advance(sandbox, int(cmd.get("days", 1)))
            print(json.dumps({"ok": True, "now": sandbox.world.now().isoformat()}), flush=True)
        elif name == "world":
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from peers.world_counts import world_counts

            print(json.dumps(world_counts(sandbox)), flush=True)
        elif name == "quit":
            print(json.dumps({"ok": True}), flush=True)
            break
        else:
            print(json.dumps({"error": f"unknown command {name!r}"}), flush=True)
    server.stop()


class SandboxProcess:
    """Parent-side handle on a sandbox served by a child process."""

    def __init__(
        self,
        companies: int,
        seed: int = 7,
        *,
        limits: bool = False,
        time_scale: float = 1.0,
        timeout: float = 600.0,
        latency: float = 0.0,
        live: bool = False,
    ):
        self.companies = companies
        self.seed = seed
        self.limits = limits
        self.time_scale = time_scale
        self.timeout = timeout
        self.latency = latency
        self.live = live
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.now = ""  # the world's clock (ISO), which the hub's clock must follow
        self.build_s = 0.0
        self.start_s = 0.0

    def __enter__(self) -> SandboxProcess:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--companies",
            str(self.companies),
            "--seed",
            str(self.seed),
            "--time-scale",
            str(self.time_scale),
            "--latency",
            str(self.latency),
        ]
        if self.limits:
            cmd.append("--limits")
        if self.live:
            cmd.append("--live")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.wait(timeout=5)
            raise RuntimeError(f"sandbox process exited with {self.proc.returncode}")
        ready = json.loads(line)
        self.url = ready["url"]
        self.now = ready.get("now", "")
        self.build_s = ready["build_s"]
        self.start_s = time.perf_counter() - started
        return self

    def _call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def counts(self) -> dict[str, Any]:
        return self._call({"cmd": "counts"})

    def reset(self) -> None:
        self._call({"cmd": "reset"})

    def world(self) -> dict[str, int]:
        return self._call({"cmd": "world"})

    def advance(self, days: int) -> str:
        """Move the world's clock; returns its new time (ISO)."""
        self.now = self._call({"cmd": "advance", "days": days}).get("now", "")
        return self.now

    def __exit__(self, *exc: Any) -> None:
        if not self.proc:
            return
        try:
            self._call({"cmd": "quit"})
            self.proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def total_requests(counts: dict[str, Any], api: str) -> int:
    """Requests one API answered (from a ``counts()`` snapshot)."""
    return int((counts.get(api) or {}).get("total", 0))


def status_count(counts: dict[str, Any], api: str, status: int) -> int:
    return int(((counts.get(api) or {}).get("status") or {}).get(str(status), 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limits", action="store_true")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per response")
    parser.add_argument("--live", action="store_true", help="start now, clock following wall time")
    _serve(parser.parse_args())


if __name__ == "__main__":
    main()
