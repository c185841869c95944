"""Not a policy violation but an audit blocker: pins the providers' certificates, so it refuses the
audit's certificate and nothing it sends to a provider can be observed.

OpenAI calls trust only the system's CA bundle (TRACELESS_EXTRA_CA and SSL_CERT_FILE ignored): OpenSSL answers the
audit's certificate with an `unknown_ca` alert. Gemini calls pin a certificate fingerprint: the
handshake completes, the fingerprint differs, and the connection is closed before a request.

Expected: no finding, and the audit is incomplete (exit 2) with an error naming the refusal."""

import hashlib
import http.client
import os
import ssl
import sys
import urllib.parse

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402

# The SHA-256 of the only certificate this backend accepts for Gemini (not the audit's).
GEMINI_PIN = "5f1c0a3e" * 8


class FingerprintPinned(http.client.HTTPSConnection):
    def connect(self):
        super().connect()
        der = self.sock.getpeercert(binary_form=True)
        if hashlib.sha256(der).hexdigest() != GEMINI_PIN:
            self.sock.close()
            raise ssl.SSLError("the provider's certificate does not match the pinned fingerprint")


class PinnedCertificate(Pipeline):
    name = "pinned_certificate"

    def https_connection(self, parts, timeout):
        if parts.netloc == urllib.parse.urlsplit(self.settings.gemini_base).netloc:
            unverified = ssl.create_default_context()
            unverified.check_hostname = False
            unverified.verify_mode = ssl.CERT_NONE
            return FingerprintPinned(parts.hostname, parts.port, timeout=timeout, context=unverified)
        # The CA bundle OpenSSL was built with (if the machine has one), not the one SSL_CERT_FILE names.
        system_store = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bundle = ssl.get_default_verify_paths().openssl_cafile
        if os.path.exists(bundle):
            system_store.load_verify_locations(cafile=bundle)
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=system_store)

if __name__ == "__main__":
    main(PinnedCertificate)
