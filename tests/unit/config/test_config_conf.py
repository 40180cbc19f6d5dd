"""Config (app.conf): reading, writing, loading and the cached Settings snapshot."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac.config import Config, Settings, SettingsWarning
from celeriac.errors import (
    AppImportError,
    ConfigurationError,
    ImproperlyConfigured,
    UnknownSettingError,
)

WriteModule = Callable[[str], str]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Write source to a uniquely named module importable from tmp_path; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(source: str) -> str:
        name = f"celeriac_test_cfg_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


# -- reading and writing ---------------------------------------------------------


def test_attribute_item_and_old_name_access_agree() -> None:
    conf = Config()
    conf.broker_url = "redis://localhost/0"
    conf["CELERY_RESULT_BACKEND"] = "redis://localhost/1"
    conf.CELERYD_CONCURRENCY = 3
    assert conf.BROKER_URL == conf["broker_url"] == "redis://localhost/0"
    assert conf.result_backend == "redis://localhost/1"
    assert conf.get("worker_concurrency") == 3
    assert conf.get("no_such_setting", "fallback") == "fallback"
    assert "BROKER_URL" in conf and "broker_url" in conf and "nope" not in conf
    assert set(conf.keys()) >= {"broker_url", "worker_concurrency", "worker_direct"}
    assert dict(conf.items())["broker_url"] == "redis://localhost/0"


def test_initial_values_like_celery_constructor_arguments() -> None:
    conf = Config({"broker_url": "memory://", "result_backend": None, "include": ["proj.tasks"]})
    assert conf.broker_url == "memory://"
    assert conf.result_backend is None
    assert conf.include == ("proj.tasks",)
    assert Config.from_mapping({"BROKER_URL": "memory://"}).broker_url == "memory://"


def test_unknown_keys_raise_with_a_suggestion() -> None:
    conf = Config()
    with pytest.raises(UnknownSettingError, match="did you mean 'worker_concurrency'"):
        conf.update(worker_concurency=2)
    with pytest.raises(UnknownSettingError, match="did you mean 'task_acks_late'"):
        conf.task_ack_late = True
    with pytest.raises(UnknownSettingError, match=r"'CELERY_ALWAYS_EAGER'.*'task_always_eager'"):
        conf["CELERY_ALWAYS_EAGRE"] = True
    with pytest.raises(KeyError):  # UnknownSettingError is a KeyError
        conf["zzz"]
    with pytest.raises(AttributeError, match="did you mean 'broker_url'"):
        conf.broker_ulr  # noqa: B018
    with pytest.raises(UnknownSettingError, match="'CELERY_BROKER_URL' \\(new name 'broker_url'"):
        conf.update(CELERY_BROKER_ULR="memory://")


def test_ill_typed_values_raise_naming_the_setting_and_the_name_given() -> None:
    conf = Config()
    with pytest.raises(ConfigurationError, match=r"'worker_concurrency' must be a positive int"):
        conf.worker_concurrency = "four"
    with pytest.raises(
        ConfigurationError, match=r"'task_acks_late' \(given as 'CELERY_ACKS_LATE'\)"
    ):
        conf.update(CELERY_ACKS_LATE="sometimes")


def test_update_is_all_or_nothing() -> None:
    conf = Config()
    with pytest.raises(ConfigurationError):
        conf.update({"broker_url": "redis://"}, worker_concurrency="four")
    assert conf.broker_url is None
    assert conf.changes == {}


def test_one_setting_under_two_names_must_agree() -> None:
    conf = Config()
    conf.update(BROKER_URL="memory://", broker_url="memory://", CELERY_ACKS_LATE=False)
    assert conf.broker_url == "memory://"
    with pytest.raises(ImproperlyConfigured, match="'BROKER_URL' and as 'broker_url'"):
        conf.update(BROKER_URL="memory://", broker_url="redis://")


def test_timedelta_values_are_stored_as_seconds() -> None:
    conf = Config()
    conf.result_expires = timedelta(days=2)
    conf.CELERYD_TASK_TIME_LIMIT = timedelta(minutes=5)
    assert conf.result_expires == 172800.0
    assert conf.settings.task_time_limit == 300.0


def test_delete_restores_the_default_and_setdefault_stays_below_sources() -> None:
    conf = Config()
    conf.task_default_queue = "jobs"
    del conf["CELERY_DEFAULT_QUEUE"]
    assert conf.task_default_queue == "celery"
    assert conf.setdefault("task_default_queue", "default") == "default"
    conf.config_from_object({"task_default_queue": "from-source"})
    assert conf.task_default_queue == "from-source"
    assert conf.setdefault("task_default_queue", "other") == "from-source"


# -- the snapshot ------------------------------------------------------------------


def test_settings_snapshot_is_cached_until_a_change() -> None:
    conf = Config()
    first = conf.settings
    assert isinstance(first, Settings)
    assert conf.settings is first
    conf.task_always_eager = True
    second = conf.settings
    assert second is not first
    assert second.task_always_eager is True and first.task_always_eager is False
    assert conf.settings is second
    conf.config_from_object({"task_serializer": "json"})
    assert conf.settings is not second


def test_mapping_settings_are_shared_so_in_place_edits_show() -> None:
    # Celery allows app.conf.beat_schedule["name"] = {...}; it must reach beat.
    conf = Config()
    conf.beat_schedule["tick"] = {"task": "proj.tick", "schedule": 10.0}
    assert conf.settings.beat_schedule["tick"]["task"] == "proj.tick"


def test_old_style_queues_and_routes_pass_through_unchanged() -> None:
    class Queue:  # stands in for celeriac's / kombu's Queue
        def __init__(self, name: str, routing_key: str) -> None:
            self.name, self.routing_key = name, routing_key

    queues = (Queue("default", "task.#"), Queue("feeds", "feed.#"))
    routes = {"feeds.tasks.*": {"queue": "feeds"}, "proj.add": "default"}
    legacy_queues = {"default": {"exchange": "default", "routing_key": "default"}}
    conf = Config({"CELERY_QUEUES": queues, "CELERY_ROUTES": routes})
    assert conf.task_queues is queues and conf.settings.task_queues is queues
    assert conf.task_routes is routes and conf.settings.task_routes is routes
    route_list = [routes, "proj.routers:route"]
    conf.update(CELERY_QUEUES=legacy_queues, CELERY_ROUTES=route_list)
    assert conf.settings.task_queues is legacy_queues
    assert conf.settings.task_routes is route_list


# -- loading -----------------------------------------------------------------------


def test_config_from_module_name(write_module: WriteModule) -> None:
    name = write_module(
        """
        from datetime import timedelta, timezone  # imports, not the timezone setting
        import os
        import json as include  # a module never counts as a setting

        BROKER_URL = "redis://:secret@localhost:6379/0"
        CELERY_RESULT_BACKEND = "redis://localhost:6379/1"
        CELERY_TASK_RESULT_EXPIRES = timedelta(hours=1)
        CELERYBEAT_SCHEDULE = {"tick": {"task": "proj.tick", "schedule": 30.0}}
        worker_prefetch_multiplier = 1          # new-style names mix in freely
        REDIS_URL = "redis://localhost"         # a helper constant, not a setting
        """
    )
    conf = Config()
    assert conf.config_from_object(name) is True
    s = conf.settings
    assert s.broker_url == "redis://:secret@localhost:6379/0"
    assert s.result_backend == "redis://localhost:6379/1"
    assert s.result_expires == 3600.0
    assert s.beat_schedule["tick"]["schedule"] == 30.0
    assert s.worker_prefetch_multiplier == 1
    assert conf.changes.keys() == {
        "beat_schedule",
        "broker_url",
        "result_backend",
        "result_expires",
        "worker_prefetch_multiplier",
    }


def test_config_from_module_attribute_and_class(write_module: WriteModule) -> None:
    name = write_module(
        """
        class Base:
            broker_url = "memory://"
            task_acks_late = False

        class Production(Base):
            task_acks_late = True
            CELERYD_CONCURRENCY = 8
        """
    )
    conf = Config()
    conf.config_from_object(f"{name}:Production")
    assert (conf.broker_url, conf.task_acks_late, conf.worker_concurrency) == ("memory://", True, 8)
    conf.config_from_object(f"{name}.Base")  # replaces the previous source
    assert (conf.task_acks_late, conf.worker_concurrency) == (False, None)


def test_config_from_object_instance_and_dict() -> None:
    class Cfg:
        def __init__(self) -> None:
            self.task_serializer = "msgpack"
            self.accept_content = ["msgpack"]

    conf = Config()
    conf.config_from_object(Cfg())
    assert conf.settings.accept_content == ("msgpack",)
    conf.config_from_object({"CELERY_ALWAYS_EAGER": True, "unrelated": 1})
    assert conf.task_always_eager is True
    assert conf.task_serializer == "json"


def test_explicit_values_beat_the_config_source(write_module: WriteModule) -> None:
    name = write_module('broker_url = "redis://from-module/0"\nresult_expires = 10\n')
    conf = Config({"broker_url": "memory://"})  # Celery("proj", broker="memory://")
    conf.config_from_object(name)
    assert conf.broker_url == "memory://"
    assert conf.result_expires == 10.0
    conf.result_expires = 20
    conf.config_from_object(name)
    assert conf.result_expires == 20.0


def test_namespace_reads_only_prefixed_names(write_module: WriteModule) -> None:
    name = write_module(
        """
        DEBUG = True
        BROKER_URL = "redis://ignored/0"
        CELERY_BROKER_URL = "redis://used/0"
        CELERY_TASK_ACKS_LATE = False
        CELERY_ALWAYS_EAGER = True
        CELERY_BEAT_SCHEDULE = {}
        """
    )
    conf = Config()
    conf.config_from_object(name, namespace="CELERY")
    assert conf.broker_url == "redis://used/0"
    assert conf.task_acks_late is False
    assert conf.task_always_eager is True
    assert conf.CELERY_TASK_ACKS_LATE is False


def test_config_source_with_the_same_setting_twice_must_agree(write_module: WriteModule) -> None:
    name = write_module('BROKER_URL = "redis://a/0"\nbroker_url = "redis://b/0"\n')
    with pytest.raises(ImproperlyConfigured, match="'broker_url' twice"):
        Config().config_from_object(name)


def test_bad_values_in_a_module_name_setting_and_given_name(write_module: WriteModule) -> None:
    name = write_module('CELERYD_CONCURRENCY = "lots"\n')
    with pytest.raises(ConfigurationError, match="'worker_concurrency' \\(given as 'CELERYD_"):
        Config().config_from_object(name)


def test_misspelt_names_in_a_module_warn_and_are_ignored(write_module: WriteModule) -> None:
    name = write_module('BROKER_ULR = "redis://x/0"\nbroker_host_name = "db"\n')
    conf = Config()
    with pytest.warns(SettingsWarning, match="'BROKER_ULR'; did you mean 'BROKER_URL'") as rec:
        conf.config_from_object(name)
    assert len(rec) == 1
    assert conf.broker_url is None


def test_missing_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = Config()
    with pytest.raises(AppImportError):
        conf.config_from_object("celeriac_no_such_module_xyz")
    with pytest.raises(ImportError):  # AppImportError is an ImportError too
        conf.config_from_object("celeriac.config:no_such_attribute")
    assert conf.config_from_object("celeriac_no_such_module_xyz", silent=True) is False
    # A module that exists but fails to import its own dependency is not "missing".
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "celeriac_test_broken_cfg.py").write_text("import celeriac_missing_dep_xyz\n")
    try:
        with pytest.raises(ModuleNotFoundError, match="celeriac_missing_dep_xyz"):
            conf.config_from_object("celeriac_test_broken_cfg", silent=True)
    finally:
        sys.modules.pop("celeriac_test_broken_cfg", None)


def test_config_from_envvar(write_module: WriteModule, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write_module('task_default_queue = "from-env"\n')
    conf = Config()
    monkeypatch.delenv("CELERIAC_TEST_CONFIG", raising=False)
    assert conf.config_from_envvar("CELERIAC_TEST_CONFIG", silent=True) is False
    with pytest.raises(ImproperlyConfigured, match="CELERIAC_TEST_CONFIG"):
        conf.config_from_envvar("CELERIAC_TEST_CONFIG")
    monkeypatch.setenv("CELERIAC_TEST_CONFIG", name)
    assert conf.config_from_envvar("CELERIAC_TEST_CONFIG") is True
    assert conf.task_default_queue == "from-env"


# -- reporting ---------------------------------------------------------------------


def test_humanize_masks_secrets_and_marks_ignored_settings() -> None:
    conf = Config(
        {
            "broker_url": "amqp://user:s3cret@rabbit:5672//",
            "broker_password": "s3cret",
            "broker_transport_options": {"sentinel_kwargs": {"password": "s3cret"}},
            "result_backend": "redis://:s3cret@localhost/1",
            "worker_direct": True,
        }
    )
    text = conf.humanize()
    assert "s3cret" not in text
    assert "broker_url: 'amqp://user:**@rabbit:5672//'" in text
    assert "worker_direct: True  # ignored by celeriac" in text
    assert "task_serializer" not in text  # defaults only on request
    assert "task_serializer: 'json'" in conf.humanize(with_defaults=True)
    assert "s3cret" in conf.humanize(censored=False)
    assert repr(conf) == "<Config: 5 settings changed>"


def test_config_pickles(write_module: WriteModule) -> None:
    import pickle

    conf = Config({"broker_url": "memory://"})
    copy: Any = pickle.loads(pickle.dumps(conf))
    assert copy.broker_url == "memory://"
    copy.broker_url = "redis://"
    assert conf.broker_url == "memory://"
