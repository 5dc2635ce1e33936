"""tlskit: local TLS for developers — CA, certificates, a test server and a client.

Importing this package is cheap on purpose: ``tlskit --version`` and ``--help``
must not pay for cryptography, rich or asyncio. Import the submodules you need
(``tlskit.pki``, ``tlskit.store``, ``tlskit.server`` …) directly.
"""

__version__ = "0.1.0"
