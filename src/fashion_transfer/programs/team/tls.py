"""The team stack's certificates: a certificate authority of its own and a server certificate
for the address the stack listens on, made once in .team/tls/ (or the user's own, given to
`make team-up`). Clients trust the CA file; keys are written 0600 and never leave the server."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fashion_transfer.files import write_secret, write_whole

VALID_DAYS = 825  # what browsers and most clients accept for a server certificate


@dataclass(frozen=True)
class Certificates:
    ca: Path  # what every client trusts
    certificate: Path  # the server's, for `host`
    key: Path  # the server's private key (0600)

    def names(self) -> list[str]:
        """The addresses and names the server certificate is valid for."""
        cert = x509.load_pem_x509_certificate(self.certificate.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return [str(n) for n in names.get_values_for_type(x509.IPAddress)] + list(
            names.get_values_for_type(x509.DNSName)
        )


PROVIDED = "provided-by-user"  # a marker: the certificates are the user's, never replaced


def install(folder: Path, certificate: Path, key: Path, ca: Path) -> None:
    """Use the user's own certificates (their CA signed the server's) from now on."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    write_whole(folder / "server.pem", certificate.read_bytes())
    write_secret(folder / "server-key.pem", key.read_bytes())
    write_whole(folder / "ca.pem", ca.read_bytes())
    (folder / "ca-key.pem").unlink(missing_ok=True)
    (folder / PROVIDED).touch()


def ensure(folder: Path, host: str) -> Certificates:
    """The stack's CA (made once) and a server certificate valid for `host` (made again when
    the host changes); the user's own, as they are, once installed."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    found = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if (folder / PROVIDED).exists():
        return found
    ca_key_path = folder / "ca-key.pem"
    if not (found.ca.exists() and ca_key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fashion-transfer team CA")])
        now = datetime.datetime.now(datetime.UTC)
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        write_secret(ca_key_path, _pem_key(key))
        write_whole(found.ca, ca.public_bytes(serialization.Encoding.PEM))
        found.certificate.unlink(missing_ok=True)
    if not found.certificate.exists() or host not in found.names():
        _server_certificate(found, ca_key_path, host)
    return found


def _server_certificate(found: Certificates, ca_key_path: Path, host: str) -> None:
    ca = x509.load_pem_x509_certificate(found.ca.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_secret(found.key, _pem_key(key))
    write_whole(found.certificate, certificate.public_bytes(serialization.Encoding.PEM))


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
