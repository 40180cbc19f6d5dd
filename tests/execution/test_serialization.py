"""Serialization through real workers: json types, msgpack, yaml, pickle, compression, signing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.execution.conftest import Project

TASKS = '''
app.conf.accept_content = ["json", "msgpack", "yaml"]
if os.environ.get("ACCEPT_PICKLE"):
    app.conf.accept_content = ["json", "msgpack", "yaml", "pickle"]
if os.environ.get("RESULTS_MSGPACK"):  # the worker and its clients agree on it
    app.conf.result_serializer = "msgpack"
    app.conf.result_accept_content = ["msgpack"]


@app.task
def echo(values):
    return [[type(v).__name__ for v in values], values]
'''

CLIENT = '''
import datetime as dt, decimal, uuid
from tasks import app, echo
values = [dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc), dt.date(2024, 1, 2),
          dt.time(3, 4, 5), decimal.Decimal("1.10"), uuid.UUID(int=5), b"text", b"raw\\xff",
          {"nested": [1, 2.5, None, True]}]
types, back = echo.delay(values).get(timeout=10)
assert back == values, back
print(" ".join(types))
for serializer in ("msgpack", "yaml"):
    assert echo.apply_async(([1, "a", {"b": None}],), serializer=serializer).get(timeout=10) \\
        == [["int", "str", "dict"], [1, "a", {"b": None}]], serializer
for compression in ("zlib", "bzip2", "gzip"):
    assert echo.apply_async((["x" * 5000],), compression=compression).get(timeout=10)[1] \\
        == ["x" * 5000], compression
refused = echo.apply_async(([1],), serializer="pickle")
try:
    refused.get(timeout=10)
except Exception as exc:
    print(refused.state, type(exc).__name__)
'''

PICKLE_CLIENT = '''
from tasks import echo
print(echo.apply_async(([(1, 2)],), serializer="pickle", queue="pickled").get(timeout=10)[0][0])
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def test_serializers_and_compression(project: Project) -> None:
    plain = project.worker("-c", "1")
    msgpack_results = {"ACCEPT_PICKLE": "1", "RESULTS_MSGPACK": "1"}
    project.worker("-c", "1", "-Q", "pickled", "-n", "pickled@%h", env=msgpack_results)
    out = project.python(CLIENT).splitlines()
    assert out[0] == "datetime date time Decimal UUID bytes bytes dict"
    assert out[1] == "FAILURE ContentDisallowed"
    # pickle runs on the worker that accepts it; its results travel as msgpack.
    assert project.python(PICKLE_CLIENT, env=msgpack_results).strip() == "tuple"
    plain.wait_for(r"Refused message .*application/x-python-serialize", timeout=5)


# -- signing --------------------------------------------------------------------------

SIGNED = '''
app.conf.update(security_key="keys/worker.key", security_certificate="keys/worker.pem",
                security_cert_store="certs/*.pem")
app.setup_security()


@app.task
def add(x, y):
    return x + y
'''

SIGNED_CLIENT = '''
import asyncio
from dataclasses import replace
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from celeriac.protocol.signing import AuthSerializer, pack, unpack
from tasks import app, add

print(add.delay(2, 2).get(timeout=10))
unsigned = add.apply_async((1, 1), serializer="json")

def publish(envelope):
    app.transport.publish_sync(envelope)

# Tampered: the signed body of add(3, 3) changed to add(300, 3), signature kept.
out = app.producer.build("tasks.add", (3, 3), {}, {}, add)
fields = unpack(out.envelope.body)
evil = fields["body"].replace(b"[3, 3]", b"[300, 3]").replace(b"[3,3]", b"[300,3]")
assert evil != fields["body"]
publish(replace(out.envelope, body=pack(evil, fields["content_type"],
                fields["content_encoding"], fields["signer"], fields["signature"])))
tampered = out.message.id

# Signed by a key whose certificate the workers do not trust.
intruder = AuthSerializer(
    load_pem_private_key(open("keys/intruder.key", "rb").read(), None),
    x509.load_pem_x509_certificate(open("keys/intruder.pem", "rb").read()), {})
out = app.producer.build("tasks.add", (5, 5), {}, {}, add)
fields = unpack(out.envelope.body)
publish(replace(out.envelope, body=intruder.encode([[5, 5], {}, {}])))
stranger = out.message.id
for task_id in (unsigned.id, tampered, stranger):
    r = app.AsyncResult(task_id)
    try:
        r.get(timeout=10)
    except Exception as exc:
        print(task_id, r.state, type(exc).__name__)
'''


def _key_and_cert(directory: Path, name: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "celeriac tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_signed_messages_verify_and_tampered_ones_are_refused(
    make_project: Callable[[str], Project],
) -> None:
    project = make_project(SIGNED)
    keys = project.path / "keys"
    _key_and_cert(keys, "worker")
    _key_and_cert(keys, "intruder")
    (project.path / "certs").mkdir()
    (project.path / "certs" / "worker.pem").write_bytes((keys / "worker.pem").read_bytes())
    worker = project.worker("-c", "1")
    out = project.python(SIGNED_CLIENT).splitlines()
    assert out[0] == "4"
    states = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert len(states) == 3
    assert all(v == ["FAILURE", "DecodeError"] or v == ["FAILURE", "ContentDisallowed"]
               for v in states.values()), states
    worker.wait_for(r"Refused message .*application/json", timeout=5)
    worker.wait_for(r"Refused message .*bad signature", timeout=5)
    worker.wait_for(r"Refused message .*unknown signer", timeout=5)
    assert "Received task" in worker.output  # the good one ran
    assert worker.output.count("succeeded") == 1


def test_signed_body_is_celerys_auth_format(tmp_path: Path) -> None:
    """Celery's own SecureSerializer reads what we sign, and we read what it signs."""
    from celery.security.certificate import Certificate, FSCertStore
    from celery.security.key import PrivateKey
    from celery.security.serialization import SecureSerializer
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from celeriac.protocol.signing import AuthSerializer, certificate_id

    _key_and_cert(tmp_path, "peer")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "peer.pem").write_bytes((tmp_path / "peer.pem").read_bytes())
    key_pem, cert_pem = (tmp_path / "peer.key").read_text(), (tmp_path / "peer.pem").read_text()
    theirs = SecureSerializer(PrivateKey(key_pem), Certificate(cert_pem),
                              FSCertStore(str(tmp_path / "store")), "sha256")
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ours = AuthSerializer(load_pem_private_key(key_pem.encode(), None), cert,
                          {certificate_id(cert): cert})
    value = [[2, 2], {"k": "é"}, {"callbacks": None}]
    assert theirs.deserialize(ours.encode(value)) == value
    assert ours.decode(theirs.serialize(value)) == value
    assert certificate_id(cert) == Certificate(cert_pem).get_id()
