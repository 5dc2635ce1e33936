"""The floor for certificate generation in Python: an EC P-256 CA and a leaf with cryptography.

No CLI, no config, no checks: key pairs, two certificates, PEM files in DIR.
usage: bare_pki.py DIR
"""

import datetime as dt
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def cert(subject, issuer, key, signer, *, ca: bool, sans=None):
    now = dt.datetime.now(dt.timezone.utc)
    b = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650 if ca else 825))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    return b.sign(signer, hashes.SHA256())


out = Path(sys.argv[1])
ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bare CA")])
ca = cert(ca_name, ca_name, ca_key, ca_key, ca=True)
leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, leaf_key, ca_key, ca=False,
            sans=["localhost"])
pem = serialization.Encoding.PEM
for name, key in (("bare-ca.key", ca_key), ("bare-leaf.key", leaf_key)):
    (out / name).write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
(out / "bare-ca.crt").write_bytes(ca.public_bytes(pem))
(out / "bare-leaf.crt").write_bytes(leaf.public_bytes(pem))
