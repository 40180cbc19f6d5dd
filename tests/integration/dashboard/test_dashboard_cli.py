"""``celeriac dashboard`` / ``celeriac flower``: the login rule and the missing extra,
each one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.dashboard_cluster import run_dashboard, write_tasks
from tests.helpers.procs import CELERIAC

pytestmark = pytest.mark.redis


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CELERIAC, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**__import__("os").environ, "PYTHONPATH": str(cwd)
                                           + ":" + __import__("os").environ.get("PYTHONPATH",
                                                                               "")})


@pytest.mark.parametrize("command", ["dashboard", "flower"])
def test_non_loopback_address_without_login_is_refused(tmp_path: Path, redis_url: str,
                                                       command: str) -> None:
    write_tasks(tmp_path, redis_url, redis_url)
    done = _run(["-A", "dashtasks", command, "--address", "0.0.0.0", "--port", "0"], tmp_path)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "without a login" in lines[0] and "--basic-auth user:password" in lines[0]


def test_bad_basic_auth_value_is_one_line(tmp_path: Path, redis_url: str) -> None:
    write_tasks(tmp_path, redis_url, redis_url)
    done = _run(["-A", "dashtasks", "flower", "--basic-auth=nopassword"], tmp_path)
    assert done.returncode != 0 and "user:password" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_flower_alias_with_login_serves_on_any_address(tmp_path: Path, redis_url: str) -> None:
    write_tasks(tmp_path, redis_url, redis_url)
    with run_dashboard(tmp_path, "--address", "0.0.0.0", "--basic-auth", "ann:pw") as dash:
        assert "basic auth" in dash.process.output
        import base64
        import urllib.error
        import urllib.request

        url = dash.url.replace("0.0.0.0", "127.0.0.1") + "/api/workers"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        token = base64.b64encode(b"ann:pw").decode()
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200


def test_missing_dashboard_extra_names_the_pip_command(tmp_path: Path, redis_url: str) -> None:
    write_tasks(tmp_path, redis_url, redis_url)
    # starlette made unimportable, as in an install without the [dashboard] extra
    code = ("import sys; sys.modules['starlette'] = None\n"
            "from celeriac.cli.main import main\n"
            "main(['-A', 'dashtasks', 'dashboard'])\n")
    import os

    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "Error: the dashboard needs the [dashboard] extra (starlette is missing): "
        "pip install 'celeriac[dashboard]'"]
