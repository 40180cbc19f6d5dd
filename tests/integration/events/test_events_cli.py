"""``celeriac events`` prints events as they arrive, one line each; clear errors."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from _event_log import write_tasks
from tests.helpers.procs import CliProcess

from celeriac.worker.worker import expand_hostname


def test_events_command_prints_a_workers_events(tmp_path: Path, redis_url: str) -> None:
    write_tasks(tmp_path, redis_url, redis_url, "events-cli")
    host = expand_hostname("evcli@%h")
    monitor = CliProcess(["-A", "evtasks", "events", "--dump"], tmp_path)
    worker: CliProcess | None = None
    try:
        monitor.wait_for("listening on redis://")
        # the monitor subscribes right after its banner; the worker takes ~1 s to start
        worker = CliProcess(["-A", "evtasks", "worker", "-E", "-P", "solo", "-n", "evcli@%h",
                             "-Q", "events-cli"], tmp_path)
        monitor.wait_for(rf"^{re.escape(host)} \[.*\] worker-online freq=2\.0")
        monitor.wait_for(rf"^{re.escape(host)} \[.*\] worker-heartbeat freq=2\.0 active=0")
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0, worker.output
        monitor.wait_for(rf"^{re.escape(host)} \[.*\] worker-offline .*sw_ident='py-celeriac'")
    finally:
        if worker is not None:
            worker.stop()
        monitor.stop()
    assert monitor.wait(10) == 0


def test_events_command_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    write_tasks(tmp_path, "redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0", "q")
    proc = CliProcess(["-A", "evtasks", "events"], tmp_path,
                      env={"CELERIAC_BROKER_CONNECTION_RETRY": "0"})
    code = proc.wait(60)
    errors = [line for line in proc.lines if line.startswith("Error")]
    assert code != 0 and len(errors) == 1, proc.output
    assert "127.0.0.1:1" in errors[0]
