"""Every error tlskit raises on purpose, and the exit code each one maps to.

The core raises these; only ``tlskit.cli`` turns them into ``error: message; hint``
and an exit status. Anything else that escapes is a bug (exit 1).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_NETWORK = 4
EXIT_TLS = 5
EXIT_PKI = 6


class TlskitError(Exception):
    """Base of every expected failure: a message naming the thing, a hint naming the fix."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class ConfigError(TlskitError):
    """Bad configuration: TOML syntax, unknown key, wrong type, bad environment value."""

    exit_code = EXIT_CONFIG


class NetworkError(TlskitError):
    """Could not reach or listen: refused, timed out, DNS, port in use."""

    exit_code = EXIT_NETWORK


class TLSError(TlskitError):
    """A TLS handshake or a certificate verification failed."""

    exit_code = EXIT_TLS


class VerificationError(TLSError):
    """A certificate chain did not verify; ``reasons`` lists each failed check in plain words."""

    def __init__(self, message: str, hint: str | None = None, reasons: list[str] | None = None) -> None:
        super().__init__(message, hint)
        self.reasons = reasons or [message]


class PKIError(TlskitError):
    """Bad name, missing CA or certificate, refusing to overwrite, wrong passphrase."""

    exit_code = EXIT_PKI


class InvalidNameError(PKIError):
    """A name given for a certificate or a constraint is not valid."""


class PassphraseError(PKIError):
    """The CA key is encrypted and the passphrase is missing or wrong."""
