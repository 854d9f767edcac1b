import ipaddress

import pytest

from orchestrator.webhook_addresses import why_not_public
from orchestrator.webhook_sender import pinned_request


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001::200e"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("::ffff:10.0.0.1", "10.0.0.1 is a private address inside the IPv6 address ::ffff:a00:1"),
        ("2002:a9fe:a9fe::", "169.254.169.254 is a link-local address inside"),
        ("fec0::1", "site-local"),
        ("64:ff9b::7f00:1", "reserved"),  # NAT64 of 127.0.0.1
    ],
)
def test_addresses_that_carry_a_non_public_one_are_refused(address: str, reason: str) -> None:
    assert reason in (why_not_public(ipaddress.ip_address(address)) or "")


def test_a_request_goes_to_the_checked_address_under_its_own_host_name() -> None:
    url, headers, extensions = pinned_request(
        "https://hooks.example.com:8443/in?x=1", ipaddress.ip_address("2606:4700::1111")
    )

    assert url == "https://[2606:4700::1111]:8443/in?x=1"
    assert headers == {"Host": "hooks.example.com:8443"}
    assert extensions == {"sni_hostname": "hooks.example.com"}  # the certificate is checked against the name
    assert pinned_request("http://a.example/", ipaddress.ip_address("93.184.215.14")) == (
        "http://93.184.215.14/",
        {"Host": "a.example"},
        {},
    )
