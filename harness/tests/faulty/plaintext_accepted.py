"""Violation: accepts plain http:// provider URLs at start-up (no TRACELESS_ALLOW_PLAINTEXT_PROVIDERS
needed), and then sends photos to the provider unencrypted.

Finding kind: insecure-transport (policy 6: all data transmission is encrypted). The audit probes it
by starting the pipeline with http:// base URLs: the clean pipeline exits 2, this one serves."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402


class PlaintextAccepted(Pipeline):
    name = "plaintext_accepted"

    def check_provider_urls(self):
        pass


if __name__ == "__main__":
    main(PlaintextAccepted)
