"""The app's definition side: settings, task registration, options, eager mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from celeriac import Celeriac, Celery, shared_task
from celeriac.errors import ConfigurationError, NotRegistered, UnknownSettingError


def test_celery_and_celeriac_are_the_same_class() -> None:
    assert Celeriac is Celery


def test_constructor_arguments_become_settings() -> None:
    app = Celery("proj", broker="redis://:pw@localhost:6379/0", backend="sqlite:///r.db",
                 include=["proj.tasks"])
    assert app.conf.broker_url == "redis://:pw@localhost:6379/0"
    assert app.conf.settings.result_backend == "sqlite:///r.db"
    assert "proj.tasks" in app.conf.settings.include


def test_old_and_new_names_map_to_one_setting() -> None:
    app = Celery("proj")
    app.conf.update(CELERY_TASK_SERIALIZER="json", CELERY_TIMEZONE="Asia/Shanghai",
                    CELERY_ACCEPT_CONTENT=["json"], CELERY_RESULT_SERIALIZER="json")
    assert app.conf.settings.timezone == "Asia/Shanghai"
    app.conf.timezone = "UTC"
    assert app.conf.settings.timezone == "UTC"


def test_unknown_setting_names_it_and_suggests() -> None:
    app = Celery("proj")
    with pytest.raises(UnknownSettingError) as info:
        app.conf.update(broker_ulr="redis://")
    assert "broker_ulr" in str(info.value) and "broker_url" in str(info.value)


def test_ill_typed_setting_names_it() -> None:
    app = Celery("proj")
    with pytest.raises(ConfigurationError) as info:
        app.conf.worker_concurrency = "four"
    assert "worker_concurrency" in str(info.value)


def test_config_from_object_module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "celeryconfig_x.py").write_text(
        "BROKER_URL = 'memory://'\nCELERY_RESULT_BACKEND = 'memory://'\n"
        "CELERY_ROUTES = {'a.b': {'queue': 'q1'}}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = Celery("proj")
    app.config_from_object("celeryconfig_x")
    assert app.conf.settings.effective_broker_url() == "memory://"
    assert app.conf.settings.task_routes == {"a.b": {"queue": "q1"}}
    sys.modules.pop("celeryconfig_x", None)


def test_embedded_default_is_one_sqlite_file_for_broker_and_results() -> None:
    settings = Celery("proj").conf.settings
    assert settings.effective_broker_url().startswith("sqlite://")
    assert settings.effective_result_backend() == settings.effective_broker_url()


def test_task_decorator_forms_and_names() -> None:
    app = Celery("proj", broker="memory://")

    @app.task
    def plain(x: int) -> int:
        return x

    @app.task(name="custom.name", bind=True, max_retries=7, queue="hipri")
    def bound(self, x: int) -> int:  # type: ignore[no-untyped-def]
        return self.max_retries + x

    assert plain.name.endswith(".plain") and plain(3) == 3
    assert app.tasks["custom.name"] is bound and bound(1) == 8
    assert bound.queue == "hipri"
    with pytest.raises(NotRegistered) as info:
        app.tasks["nope"]
    assert "nope" in str(info.value)
    with pytest.raises(TypeError, match="unknown option"):
        app.task(retries_max=3)(lambda: None)


def test_shared_task_is_registered_on_apps() -> None:
    @shared_task
    def shared_add(x: int, y: int) -> int:
        return x + y

    later = Celery("later", broker="memory://")
    assert shared_add.name in later.tasks
    assert later.tasks[shared_add.name](1, 2) == 3


def test_wrong_arguments_fail_at_send_time() -> None:
    app = Celery("proj", broker="memory://")

    @app.task
    def two(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TypeError, match="two"):
        two.delay(1)  # type: ignore[call-arg]


def test_eager_mode_runs_in_place_and_propagates() -> None:
    app = Celery("proj", broker="memory://", backend="memory://")
    app.conf.task_always_eager = True

    @app.task(bind=True)
    def who(self) -> tuple[bool, str | None]:  # type: ignore[no-untyped-def]
        return self.request.is_eager, self.request.id

    @app.task
    def boom() -> None:
        raise KeyError("k")

    result = who.delay()
    assert result.get() == (True, result.id)
    failed = boom.delay()
    assert failed.failed() and isinstance(failed.result, KeyError)
    app.conf.task_eager_propagates = True
    with pytest.raises(KeyError):
        boom.delay()


def test_eager_retry_runs_again_until_success() -> None:
    app = Celery("proj", broker="memory://")
    app.conf.task_always_eager = True
    calls: list[int] = []

    @app.task(bind=True, max_retries=3)
    def flaky(self) -> int:  # type: ignore[no-untyped-def]
        calls.append(self.request.retries)
        if self.request.retries < 2:
            raise self.retry(countdown=10)
        return self.request.retries

    assert flaky.delay().get() == 2
    assert calls == [0, 1, 2]
