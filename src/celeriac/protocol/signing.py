"""The ``auth`` serializer: message bodies signed with an X.509 key, as Celery 5 signs them.

Wire format (content type ``application/data``, encoding ``utf-8``): the body
is base64 of five fields joined by the two bytes ``\\x00\\x01``::

    b64(signer) SEP b64(signature) SEP inner content type SEP inner encoding SEP inner body

``inner body`` is the value serialized with the inner serializer (``json`` by
default); ``signature`` signs exactly those bytes (RSA-PSS with MGF1 and the
largest salt, or ECDSA, over ``security_digest``, sha256 by default), so the
receiver verifies before decoding anything. ``signer`` names the certificate:
its issuer's attribute values joined by spaces, a space, and its serial
number. The receiver looks the signer up in its certificate store, refuses
unknown signers and expired certificates, and only then decodes the inner body
(pickle inside a signed body still needs ``pickle`` in ``accept_content``).

This module is pure: it gets loaded keys and certificates (see
``celeriac.app.security`` for reading them from files). It needs the optional
``cryptography`` package (``pip install celeriac[auth]``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from celeriac.errors import ConfigurationError, SecurityError
from celeriac.protocol.serializers import (
    AUTH_CONTENT_TYPE,
    Serializer,
    dumps,
    loads,
    register_serializer,
)

__all__ = [
    "SEPARATOR",
    "AuthSerializer",
    "certificate_id",
    "pack",
    "register_auth",
    "sign",
    "unpack",
    "verify",
]

SEPARATOR = b"\x00\x01"
# Inner serializers a signed body may use without being listed in accept_content.
_SAFE_INNER = ("json", "msgpack", "yaml")


def _digest(name: str) -> hashes.HashAlgorithm:
    algorithm = getattr(hashes, name.upper().replace("-", ""), None)
    if not isinstance(algorithm, type) or not issubclass(algorithm, hashes.HashAlgorithm):
        raise ConfigurationError(f"unknown security_digest {name!r} (e.g. sha256, sha512)")
    return algorithm()


def certificate_id(cert: x509.Certificate) -> str:
    """The signer name of ``cert``: issuer attribute values and serial number."""
    issuer = " ".join(str(attr.value) for attr in cert.issuer)
    return f"{issuer} {cert.serial_number}"


def sign(data: bytes, key: PrivateKeyTypes, digest: str = "sha256") -> bytes:
    """Sign ``data`` with an RSA (PSS) or EC (ECDSA) private key."""
    algorithm = _digest(digest)
    if isinstance(key, rsa.RSAPrivateKey):
        pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
        return key.sign(data, pad, algorithm)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    raise ConfigurationError(f"security_key must be an RSA or EC key, not {type(key).__name__}")


def verify(data: bytes, signature: bytes, cert: x509.Certificate, digest: str = "sha256",
           now: datetime | None = None) -> None:
    """Raise :class:`SecurityError` unless ``signature`` of ``data`` is valid for ``cert``."""
    now = now or datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SecurityError(f"certificate {certificate_id(cert)!r} is expired or not yet valid")
    algorithm = _digest(digest)
    public = cert.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
            public.verify(signature, data, pad, algorithm)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(algorithm))
        else:
            raise SecurityError(f"unsupported key type {type(public).__name__} in certificate")
    except InvalidSignature:
        raise SecurityError("bad signature: the message was altered or signed by "
                            "another key") from None


def pack(body: bytes, content_type: str, content_encoding: str, signer: str,
         signature: bytes) -> bytes:
    """The ``application/data`` body for a signed inner body."""
    fields = [
        base64.b64encode(signer.encode("utf-8")), base64.b64encode(signature),
        content_type.encode("utf-8"), content_encoding.encode("utf-8"), body,
    ]
    return base64.b64encode(SEPARATOR.join(fields))


def unpack(data: bytes) -> dict[str, Any]:
    """Split a signed body into signer, signature, content type/encoding and inner body."""
    try:
        raw = base64.b64decode(data, validate=True)
        signer, signature, content_type, encoding, body = raw.split(SEPARATOR, 4)
        return {
            "signer": base64.b64decode(signer).decode("utf-8"),
            "signature": base64.b64decode(signature),
            "content_type": content_type.decode("utf-8"),
            "content_encoding": encoding.decode("utf-8"),
            "body": body,
        }
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SecurityError("not a signed message: the body is not in the auth format") from None


class AuthSerializer:
    """Signs with one key and certificate; verifies against a certificate store."""

    def __init__(self, key: PrivateKeyTypes | None, cert: x509.Certificate | None,
                 store: Mapping[str, x509.Certificate], digest: str = "sha256",
                 serializer: str = "json", accept: Collection[str] = ()) -> None:
        _digest(digest)
        self.key = key
        self.cert = cert
        self.signer = certificate_id(cert) if cert is not None else None
        self.store = dict(store)
        self.digest = digest
        self.serializer = serializer
        self.accept = tuple(_SAFE_INNER) + tuple(a for a in accept if a != "auth")

    def encode(self, value: Any) -> bytes:
        """Serialize ``value`` with the inner serializer, then sign it."""
        if self.key is None or self.signer is None:
            raise ConfigurationError("the auth serializer needs security_key and "
                                     "security_certificate to sign messages")
        body, content_type, content_encoding = dumps(value, self.serializer)
        return pack(body, content_type, content_encoding, self.signer,
                    sign(body, self.key, self.digest))

    def decode(self, data: bytes) -> Any:
        """Verify the signature against the store, then decode the inner body."""
        fields = unpack(data)
        cert = self.store.get(fields["signer"])
        if cert is None:
            raise SecurityError(f"unknown signer {fields['signer']!r}: its certificate is "
                                "not in security_cert_store")
        verify(fields["body"], fields["signature"], cert, self.digest)
        return loads(fields["body"], fields["content_type"], fields["content_encoding"],
                     self.accept)


def register_auth(serializer: AuthSerializer) -> None:
    """Install ``serializer`` as the process-wide ``auth`` serializer (as Celery does)."""
    register_serializer(Serializer("auth", AUTH_CONTENT_TYPE, "utf-8", serializer.encode,
                                   serializer.decode))
