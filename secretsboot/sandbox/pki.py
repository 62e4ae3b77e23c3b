"""A throwaway certificate authority for the sandbox's HTTPS endpoints.

Every fake (and OpenBao) serves a certificate issued by one fresh CA whose PEM
is written to ``<dir>/ca.pem``; clients trust that file and nothing else.
Keys are ECDSA P-256: generation is ~1 ms, against ~50-100 ms for RSA-2048.

Example::

    ca = CertificateAuthority.create(Path(".secretsboot-sandbox"))
    cert = ca.issue_server_cert()               # SANs 127.0.0.1 and localhost
    server_ctx = cert.ssl_context()             # for FakeServer(ssl_context=...)
    requests.get(url, verify=str(ca.ca_path))   # a client trusts ca.pem
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from secretsboot._fs import atomic_write_text

_VALIDITY = dt.timedelta(days=7)
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    """A certificate for ``key`` with a random serial, valid from a little before now."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
    )


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """A KeyUsage extension allowing ``allowed`` and nothing else."""
    return x509.KeyUsage(**{usage: usage in allowed for usage in _KEY_USAGES})


@dataclass(frozen=True)
class ServerCert:
    """A server certificate and key on disk (PEM)."""

    cert_path: Path
    key_path: Path
    hosts: tuple[str, ...]

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side TLS context with this certificate (TLS 1.2+)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx


class CertificateAuthority:
    """A self-signed CA that issues server certificates for loopback hosts."""

    def __init__(
        self, directory: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
    ) -> None:
        self.directory = directory
        self._key = key
        self.certificate = cert
        self._issued = 0

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @classmethod
    def create(
        cls, directory: Path, common_name: str = "secretsboot sandbox CA"
    ) -> CertificateAuthority:
        """Generate a new CA and write its certificate to ``directory/ca.pem``."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            _builder(name, name, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                _key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, key, cert)
        atomic_write_text(ca.ca_path, ca.ca_pem, what="sandbox CA certificate")
        return ca

    def issue_server_cert(
        self, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), *, name: str | None = None
    ) -> ServerCert:
        """Issue a server certificate for ``hosts`` (IP addresses or DNS names)."""
        self._issued += 1
        stem = name or f"server-{self._issued}"
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        ca_ski = self.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        cert = (
            _builder(subject, self.certificate.subject, key)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage("digital_signature", "key_agreement"), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        cert_path = self.directory / f"{stem}.pem"
        key_path = self.directory / f"{stem}-key.pem"
        cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        atomic_write_text(cert_path, cert_pem, what="server certificate")
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        atomic_write_text(key_path, key_pem, mode=0o600, what="server key")
        return ServerCert(cert_path=cert_path, key_path=key_path, hosts=tuple(hosts))

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client-side TLS context that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))
