"""Violation: resolves `telemetry.traceless-test.invalid` (socket.getaddrinfo) before each generation
request, as a telemetry client would.

Finding kind: unlisted-egress (policy 2c, 5), seen as a DNS query for an unlisted name.
Safety: the lookup is made only when every nameserver in /etc/resolv.conf is a loopback address
(the audit gives the pipeline its own resolver on 127.0.0.53); otherwise it is skipped with a note on
stderr, so running this file outside the audit never sends a query off the machine."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ipaddress  # noqa: E402
import socket  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402

TELEMETRY_HOST = "telemetry.traceless-test.invalid"


def resolver_is_loopback():
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as conf:
            servers = [line.split()[1] for line in conf if line.startswith("nameserver") and len(line.split()) > 1]
        return bool(servers) and all(ipaddress.ip_address(server.split("%")[0]).is_loopback for server in servers)
    except (OSError, ValueError):
        return False


class EgressDns(Pipeline):
    name = "egress_dns"

    def on_request_start(self, headers):
        if not resolver_is_loopback():
            sys.stderr.write("egress_dns: lookup skipped, /etc/resolv.conf names a non-loopback resolver\n")
            return
        try:
            socket.getaddrinfo(TELEMETRY_HOST, 443, proto=socket.IPPROTO_TCP)
        except OSError:
            pass


if __name__ == "__main__":
    main(EgressDns)
