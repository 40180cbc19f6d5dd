"""TLS to the broker and result store: ``amqps://`` / ``rediss://`` URLs and the
``broker_use_ssl`` / ``redis_backend_use_ssl`` settings.

For Redis, :func:`redis_ssl_kwargs` turns the same :class:`TLSOptions` into
redis-py's ``ssl_*`` connection arguments. For RabbitMQ:

``broker_use_ssl`` (normalised by the config: canonical key names, ``cert_reqs``
an :class:`ssl.VerifyMode`) becomes a :class:`TLSOptions`. Every connection to
RabbitMQ takes it from :class:`~._amqp_common.AMQPParams`: the async faces
(aiormq, the consuming connection) as an :class:`ssl.SSLContext` from
:func:`ssl_context`, the blocking face (py-amqp) as the ``ssl`` options dict
from :func:`py_amqp_ssl`, which py-amqp turns into the same context.

What a context does, as py-amqp does it: ``cert_reqs`` (default
``CERT_REQUIRED``) sets the verification; with verification on, the broker's
certificate must chain to ``ca_certs`` (or the system's CAs when none is
given) and name ``server_hostname`` (default: the URL's host); ``certfile`` and
``keyfile`` are the client certificate. Files are checked when the first
connection is made: a missing or unreadable one is a
:class:`~celeriac.errors.ConfigurationError` naming the setting.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celeriac.config._validate import BROKER_SSL_EXPECTED, describe_value, ssl_options
from celeriac.errors import ConfigurationError

__all__ = [
    "TLSOptions",
    "py_amqp_ssl",
    "redis_ssl_kwargs",
    "ssl_context",
    "tls_options",
    "verify_hint",
]

_SETTING = "broker_use_ssl"


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """How to open TLS to the broker (frozen: part of the connection parameters)."""

    keyfile: str | None = None
    certfile: str | None = None
    ca_certs: str | None = None
    cert_reqs: ssl.VerifyMode = ssl.CERT_REQUIRED
    server_hostname: str | None = None


def tls_options(value: bool | Mapping[str, Any] | None, *, url_tls: bool = False,
                setting: str = _SETTING) -> TLSOptions | None:
    """The TLS to use, or ``None`` for plain TCP.

    ``value`` is ``broker_use_ssl``: ``True`` (defaults), a dict of options, or
    false (TLS only if the URL is ``amqps://``, ``url_tls``). An empty dict is
    false, as in Celery.
    """
    try:
        normal = ssl_options(value if value is not None else False)
    except ValueError:
        raise ConfigurationError(f"setting {setting!r} must be {BROKER_SSL_EXPECTED}, "
                                 f"got {describe_value(setting, value)}") from None
    if not normal:
        return TLSOptions() if url_tls else None
    if normal is True:
        return TLSOptions()
    return TLSOptions(**{k: os.fspath(v) if isinstance(v, os.PathLike) else v
                         for k, v in normal.items() if v is not None})


def _check_file(what: str, path: str | None, setting: str = _SETTING) -> None:
    if path is not None and not os.path.isfile(path):
        raise ConfigurationError(
            f"setting {setting!r}: the {what} file {path!r} does not exist: give the path "
            f"of a PEM file this process can read (or leave {what} out)")


def ssl_context(tls: TLSOptions) -> ssl.SSLContext:
    """A client context for ``tls``, made afresh for each connection (so renewed
    certificate files are read again, as py-amqp does).

    Raises :class:`~celeriac.errors.ConfigurationError` for a missing or
    unloadable file.
    """
    for what in ("ca_certs", "certfile", "keyfile"):
        _check_file(what, getattr(tls, what))
    if tls.keyfile is not None and tls.certfile is None:
        raise ConfigurationError(f"setting {_SETTING!r}: keyfile needs certfile (the client "
                                 f"certificate it is the key of)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if tls.certfile is not None:
            context.load_cert_chain(tls.certfile, tls.keyfile)
        if tls.ca_certs is not None:
            context.load_verify_locations(tls.ca_certs)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"setting {_SETTING!r}: cannot load the certificates or key given "
            f"(ca_certs={tls.ca_certs!r}, certfile={tls.certfile!r}, keyfile={tls.keyfile!r}): "
            f"{exc}: they must be PEM files") from None
    context.check_hostname = tls.cert_reqs != ssl.CERT_NONE
    context.verify_mode = tls.cert_reqs
    if tls.ca_certs is None and tls.cert_reqs != ssl.CERT_NONE:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return context


def py_amqp_ssl(tls: TLSOptions, host: str) -> dict[str, Any]:
    """py-amqp's ``ssl`` options for ``tls``: the same checks as :func:`ssl_context`
    (which is built first, so bad files raise the same error here)."""
    ssl_context(tls)
    options: dict[str, Any] = {"cert_reqs": tls.cert_reqs}
    for key in ("ca_certs", "certfile", "keyfile"):
        if getattr(tls, key) is not None:
            options[key] = getattr(tls, key)
    if tls.cert_reqs != ssl.CERT_NONE:
        # py-amqp checks the name when it is given (and only then).
        options["server_hostname"] = tls.server_hostname or host
    return options


def redis_ssl_kwargs(tls: TLSOptions, *, setting: str = _SETTING) -> dict[str, Any]:
    """redis-py's ``ssl_*`` connection arguments for ``tls`` (its files checked first,
    so a missing one is the same one-line error as on RabbitMQ).

    redis-py has no ``server_hostname``: it checks the URL's host when
    verification is on, so a different name is a configuration error here.
    """
    if tls.server_hostname is not None:
        raise ConfigurationError(
            f"setting {setting!r}: server_hostname is not supported for Redis (the "
            f"certificate must name the host of the URL): remove it")
    for what in ("ca_certs", "certfile", "keyfile"):
        _check_file(what, getattr(tls, what), setting)
    kwargs: dict[str, Any] = {"ssl_cert_reqs": tls.cert_reqs,
                              "ssl_check_hostname": tls.cert_reqs != ssl.CERT_NONE}
    for what in ("ca_certs", "certfile", "keyfile"):
        if getattr(tls, what) is not None:
            kwargs[f"ssl_{what}"] = getattr(tls, what)
    return kwargs


def verify_hint(exc: BaseException) -> str | None:
    """The one-line reason and fix when ``exc`` (or its cause) is a failed
    certificate verification, else ``None``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            reason = current.verify_message or str(current)
            return (f"TLS certificate verification failed ({reason}): set broker_use_ssl="
                    f"{{'ca_certs': '/path/to/ca.pem'}} to trust the CA that signed the "
                    f"broker's certificate (or 'cert_reqs': ssl.CERT_NONE to skip the check)")
        current = current.__cause__ or current.__context__
    return None
