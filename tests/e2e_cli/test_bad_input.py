"""Bad input gets one clear line, never a traceback, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.procs import CliProcess, run_python


def _one_line_error(proc: CliProcess) -> str:
    code = proc.wait(30)
    assert code != 0
    assert "Traceback" not in proc.output
    errors = [line for line in proc.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, proc.output
    return errors[0]


def test_missing_app_module(tmp_path: Path) -> None:
    line = _one_line_error(CliProcess(["-A", "no_such_module", "worker"], tmp_path))
    assert "no_such_module" in line


def test_module_without_app(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("x = 1\n")
    line = _one_line_error(CliProcess(["-A", "plain", "worker"], tmp_path))
    assert "plain" in line and "app" in line


def test_unknown_broker_scheme_masks_password(project: Path) -> None:
    proc = CliProcess(["-A", "tasks", "-b", "nosuch://user:secret@host/0", "worker"], project)
    line = _one_line_error(proc)
    assert "nosuch" in line and "secret" not in proc.output


def test_bad_loglevel(project: Path) -> None:
    proc = CliProcess(["-A", "tasks", "worker", "-l", "loud"], project)
    assert proc.wait(30) != 0
    assert "loud" in proc.output and "Traceback" not in proc.output


def test_celery_green_pool_names_the_celeriac_equivalent(project: Path) -> None:
    proc = CliProcess(["-A", "tasks", "worker", "--pool=gevent", "--concurrency=100"], project)
    line = _one_line_error(proc)
    assert "gevent" in line and "-P asyncio" in line


def test_unknown_pool_lists_the_pools(project: Path) -> None:
    line = _one_line_error(CliProcess(["-A", "tasks", "worker", "-P", "fork"], project))
    assert "'fork'" in line and "prefork" in line and "asyncio" in line


def test_unreachable_broker_is_retried_with_a_clear_line(project: Path) -> None:
    proc = CliProcess(
        ["-A", "tasks", "-b", "redis://:hunter2@127.0.0.1:1/0", "worker", "-P", "solo"], project
    )
    try:
        line = proc.wait_for(r"cannot connect to", timeout=30)[0]
        assert "127.0.0.1:1" in line and "hunter2" not in proc.output
        assert "Trying again" in line
        assert "Traceback" not in proc.output
    finally:
        proc.stop()


def test_unknown_task_is_recorded_as_failure_and_worker_keeps_going(
    project: Path, start_worker
) -> None:
    worker = start_worker("-P", "threads")
    code = (
        "from tasks import app, add\n"
        "r = app.send_task('tasks.nope', (1,))\n"
        "try:\n"
        "    r.get(timeout=10)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, r.state)\n"
        "print(add.delay(1, 2).get(timeout=10))\n"
        "import asyncio\n"
        "t = app.new_transport()\n"
        "async def dead():\n"
        "    await t.connect()\n"
        "    try:\n"
        "        return await t.dead_letters('celery')\n"
        "    finally:\n"
        "        await t.close()\n"
        "print(len(asyncio.run(dead())))\n"
    )
    done = run_python(code, project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["NotRegistered", "FAILURE", "3", "1"]
    worker.wait_for(r"Received unregistered task of type 'tasks.nope'")


def test_undecodable_and_disallowed_messages_are_set_aside(project: Path, start_worker) -> None:
    worker = start_worker("-P", "threads")
    code = (
        "import asyncio, pickle\n"
        "from celeriac.protocol.envelope import Envelope\n"
        "from tasks import app, add\n"
        "t = app.transport\n"
        "hdr = {'task': 'tasks.add', 'id': 'bad-json-1', 'lang': 'py'}\n"
        "t.publish_sync(Envelope(b'{not json', headers=hdr, routing_key='celery'))\n"
        "hdr2 = {'task': 'tasks.add', 'id': 'pickled-1', 'lang': 'py'}\n"
        "body = pickle.dumps(((1, 2), {}, {}))\n"
        "t.publish_sync(Envelope(body, 'application/x-python-serialize', 'binary', hdr2,"
        " routing_key='celery'))\n"
        "t.publish_sync(Envelope(b'[[1], {}, {}]', headers={}, routing_key='celery'))\n"
        "for tid in ('bad-json-1', 'pickled-1'):\n"
        "    r = app.AsyncResult(tid)\n"
        "    try:\n"
        "        r.get(timeout=10)\n"
        "    except Exception as exc:\n"
        "        print(tid, r.state)\n"
        "print(add.delay(2, 3).get(timeout=10))\n"
        "async def dead():\n"
        "    a = app.new_transport()\n"
        "    await a.connect()\n"
        "    try:\n"
        "        return await a.dead_letters('celery')\n"
        "    finally:\n"
        "        await a.close()\n"
        "print(len(asyncio.run(dead())))\n"
    )
    done = run_python(code, project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["bad-json-1", "FAILURE", "pickled-1", "FAILURE", "5", "3"]
    out = worker.output
    assert "Refused message" in out and "Traceback" not in out
