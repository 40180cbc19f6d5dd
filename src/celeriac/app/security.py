"""Message signing set-up: ``app.setup_security()`` (Celery's API).

Reads the private key (``security_key``, PEM, optionally protected by
``security_key_password``), the matching certificate
(``security_certificate``) and the certificates of every trusted signer
(``security_cert_store``: a directory, a glob such as ``/etc/certs/*.pem`` or
one file), installs the ``auth`` serializer for this process and switches the
app to it: ``task_serializer='auth'`` and ``accept_content=['auth']`` (or the
``allowed_serializers`` given), so unsigned or tampered messages are refused.
Results keep their own serializer; ``result_accept_content`` defaults to it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from celeriac.errors import ConfigurationError

if TYPE_CHECKING:
    from celeriac.app.core import App

__all__ = ["load_cert_store", "setup_security"]


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path!r}: {exc}") from exc


def load_cert_store(location: str) -> dict[str, Any]:
    """Certificates by signer id from a directory, a glob or a single PEM file."""
    from cryptography import x509  # optional dependency (celeriac[auth])

    from celeriac.protocol.signing import certificate_id

    if os.path.isdir(location):
        paths = sorted(glob.glob(os.path.join(location, "*")))
    else:
        paths = sorted(glob.glob(location)) or [location]
    store: dict[str, Any] = {}
    for path in paths:
        if os.path.isdir(path):
            continue
        try:
            certs = x509.load_pem_x509_certificates(_read(path, "certificate"))
        except ValueError as exc:
            raise ConfigurationError(f"{path!r} in security_cert_store is not a PEM "
                                     f"certificate: {exc}") from exc
        for cert in certs:
            cert_id = certificate_id(cert)
            if cert_id in store:
                raise ConfigurationError(f"duplicate certificate {cert_id!r} in "
                                         "security_cert_store")
            store[cert_id] = cert
    if not store:
        raise ConfigurationError(f"security_cert_store {location!r} holds no certificate")
    return store


def setup_security(
    app: App,
    allowed_serializers: Sequence[str] | None = None,
    key: str | None = None,
    key_password: bytes | str | None = None,
    cert: str | None = None,
    store: str | None = None,
    digest: str | None = None,
    serializer: str = "json",
) -> None:
    """Install the signing serializer from files named here or in the settings."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError("message signing needs the 'cryptography' package: "
                                 "pip install 'celeriac[auth]'") from None
    from celeriac.protocol.signing import AuthSerializer, register_auth

    s = app.conf.settings
    key_path = key or s.security_key
    cert_path = cert or s.security_certificate
    store_path = store or s.security_cert_store
    missing = [name for name, value in (("security_key", key_path),
                                        ("security_certificate", cert_path),
                                        ("security_cert_store", store_path)) if not value]
    if missing:
        raise ConfigurationError(f"setup_security() needs {', '.join(missing)}")
    assert key_path and cert_path and store_path
    password = key_password if key_password is not None else s.security_key_password
    if isinstance(password, str):
        password = password.encode("utf-8")
    try:
        private_key = load_pem_private_key(_read(key_path, "security_key"), password)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot load security_key {key_path!r}: {exc}") from exc
    try:
        certificate = x509.load_pem_x509_certificate(_read(cert_path, "security_certificate"))
    except ValueError as exc:
        raise ConfigurationError(f"cannot load security_certificate {cert_path!r}: "
                                 f"{exc}") from exc
    accept = tuple(allowed_serializers) if allowed_serializers else ("auth",)
    register_auth(AuthSerializer(private_key, certificate, load_cert_store(store_path),
                                 digest or s.security_digest, serializer, accept))
    updates: dict[str, Any] = {"task_serializer": "auth", "accept_content": list(accept)}
    if s.result_accept_content is None:
        updates["result_accept_content"] = [s.result_serializer]
    app.conf.update(updates)
