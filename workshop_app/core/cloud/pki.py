"""A small certificate authority for the cloud link: CA, broker and client certificates.

EC P-256 keys and SHA-256 signatures throughout: mosquitto (OpenSSL) and AWS IoT Core both
accept them, and they are quick to make, so tests build a fresh authority on every run. A
client certificate's common name is its MQTT identity: the VIN of a vehicle or a workshop id
(mosquitto's ``use_identity_as_username``). Files are PEM; private keys are written 0600.

    >>> ca = CertificateAuthority.create(Path("pki"))               # doctest: +SKIP
    >>> ca.issue_server(Path("pki"), "broker")                       # doctest: +SKIP
    >>> ca.issue_client(Path("pki"), "WSADEM5T2T0000421")            # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from workshop_app.core.cloud.errors import CloudError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
# Long enough for a trial or a test run to never meet an expiry, short enough to be a trial.
CA_DAYS = 3650
LEAF_DAYS = 825  # the longest leaf lifetime browsers and most platforms still accept


@dataclass(frozen=True, slots=True)
class Identity:
    """Where one party's certificate and private key were written."""

    name: str
    cert: Path
    key: Path


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """PEM, unencrypted, created 0600 so the key is never readable by others, even briefly."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_secret(path, data)


def write_secret(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` readable by the owner only; ``durable`` waits until it is on the disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "workshop_app cloud link"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    # A minute back so a broker whose clock is slightly behind accepts a certificate made now.
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)


class CertificateAuthority:
    """The trial CA: signs the broker's certificate and one client certificate per identity."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path) -> None:
        self.cert = cert
        self.key = key
        self.cert_path = cert_path

    @classmethod
    def create(cls, folder: Path, name: str = "workshop_app trial CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        write_private_key(folder / CA_KEY, key)
        cert_path = folder / CA_CERT
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, cert_path)

    @classmethod
    def load(cls, folder: Path) -> CertificateAuthority:
        cert_path, key_path = folder / CA_CERT, folder / CA_KEY
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise CloudError(f"{folder}: cannot read the CA ({CA_CERT}, {CA_KEY}): {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CloudError(f"{key_path}: not an EC private key")
        return cls(cert, key, cert_path)

    @classmethod
    def open_or_create(cls, folder: Path) -> CertificateAuthority:
        if (folder / CA_CERT).exists() or (folder / CA_KEY).exists():
            return cls.load(folder)
        return cls.create(folder)

    def _issue(self, folder: Path, name: str, server: bool) -> Identity:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if server:
            # Clients check the host name against these; the trial broker listens on loopback.
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        folder.mkdir(parents=True, exist_ok=True)
        identity = Identity(name, folder / f"{name}.crt", folder / f"{name}.key")
        write_private_key(identity.key, key)
        identity.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return identity

    def issue_server(self, folder: Path, name: str = "broker") -> Identity:
        """The broker's certificate: SAN localhost and 127.0.0.1."""
        return self._issue(folder, name, server=True)

    def issue_client(self, folder: Path, common_name: str) -> Identity:
        """A client certificate whose common name is the MQTT identity (VIN or workshop id)."""
        return self._issue(folder, common_name, server=False)


def common_name(cert_path: Path) -> str:
    """The common name of a PEM certificate (the MQTT identity a broker will see)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CloudError(f"{cert_path}: not a readable PEM certificate ({exc})") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise CloudError(f"{cert_path}: the certificate has no common name")
    return str(names[0].value)
