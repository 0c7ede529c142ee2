"""swarmai's local certificate authority: HTTPS at the gateway with nothing to buy.

A stack whose ``gateway.tls.mode`` is ``local`` (the default) gets its gateway
certificate from a CA that swarmai creates once per user, in
``$SWARMAI_CA_DIR`` or ``$XDG_DATA_HOME/swarmai/ca``.  Clients trust that one
CA certificate (``swarmai ca`` says how) and every stack's gateway with it.

The certificate and its key travel as one PEM (key first, then the certificate) in
one Docker secret: Traefik reads the certificate blocks of ``certFile`` and the
key block of ``keyFile``, so both can name the same file, and rotating the
secret replaces the pair at once.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmai.errors import OperationError
from swarmai.files import PRIVATE, PUBLIC, create_atomically, open_no_follow

CA_DIR_ENV = "SWARMAI_CA_DIR"
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CA_DAYS = 10 * 365
# Browsers refuse server certificates valid for more than 398 days.
SERVER_DAYS = 397
# The names every local certificate holds: the gateway as this machine reaches it.
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class LocalCa:
    cert: Path
    key: Path
    created: bool = False  # by this call: the user has not been told how to trust it yet


def ca_dir() -> Path:
    """Where the CA lives: $SWARMAI_CA_DIR, or $XDG_DATA_HOME/swarmai/ca."""
    if explicit := os.environ.get(CA_DIR_ENV):
        return Path(explicit)
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "swarmai" / "ca"


def ensure_ca(directory: Path | None = None) -> LocalCa:
    """The CA in ``directory`` (default :func:`ca_dir`), created the first time.

    Held under a lock, and each file created whole or not at all: two deploys
    at once make one CA, and an interrupted one leaves no half of a pair.
    """
    folder = directory or ca_dir()
    ca = LocalCa(folder / CA_CERT, folder / CA_KEY)
    if ca.cert.exists() and ca.key.exists():
        return ca
    with _locked(folder):
        if ca.key.exists() != ca.cert.exists():
            raise OperationError(
                f"{folder} holds only one of {CA_CERT} and {CA_KEY}: swarmai's local CA is "
                "incomplete; restore the missing file, or move the folder away to make a new "
                "CA (clients must then trust the new one)")
        if ca.cert.exists():
            return ca
        key = ec.generate_private_key(ec.SECP256R1())
        create_atomically(ca.key, _key_pem(key), mode=PRIVATE)
        create_atomically(ca.cert, _ca_certificate(key).public_bytes(
            serialization.Encoding.PEM).decode(), mode=PUBLIC)
    return LocalCa(ca.cert, ca.key, created=True)


def default_names() -> tuple[str, ...]:
    """Loopback and this machine's own names: where a local gateway is reached."""
    names = [*LOOPBACK, socket.gethostname(), socket.getfqdn()]
    return tuple(dict.fromkeys(name for name in names if name))


def issue(ca: LocalCa, names: Sequence[str], *, days: int = SERVER_DAYS) -> str:
    """A server key and certificate for ``names`` (DNS names or addresses), as one PEM.

    The certificate is signed by the CA directly: there is no chain to send."""
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise OperationError(f"{ca.key} is not the EC key swarmai's local CA makes")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks a little behind
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(list(_alt_names(names))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
    )
    cert = builder.sign(ca_key, hashes.SHA256())
    # Without the CA's own certificate: a client has it, or must not be
    # handed it by the server it is deciding whether to trust.
    return _key_pem(key) + cert.public_bytes(serialization.Encoding.PEM).decode()


def trust_hint(ca: LocalCa) -> str:
    return (f"clients trust swarmai's local CA {ca.cert}: curl --cacert {ca.cert} ..., "
            f"Python's ssl.create_default_context(cafile=...), or system-wide on Debian: "
            f"cp {ca.cert} /usr/local/share/ca-certificates/swarmai.crt && "
            "update-ca-certificates")


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "swarmai"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"swarmai local CA ({socket.gethostname()})"),
    ])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        # It signs server certificates only: none of them can sign in turn.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public),
                       critical=False)
        .sign(key, hashes.SHA256())
    )


def _usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates, content_commitment=False,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=signs_certificates, crl_sign=signs_certificates,
        encipher_only=False, decipher_only=False)


def _alt_names(names: Sequence[str]) -> Iterator[x509.GeneralName]:
    for name in dict.fromkeys(names):
        try:
            yield x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            yield x509.DNSName(name)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = open_no_follow(folder / ".lock", os.O_RDWR | os.O_CREAT, what="CA lock file",
                        mode=PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
