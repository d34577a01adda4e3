"""Whose X-Forwarded-For and X-Forwarded-Proto the portal believes: the entries its own proxies appended."""
from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.portal.pages import ProxyHops


def request(peer: str, forwarded_for: str | None = None, proto: str | None = None, scheme: str = "http"):
    headers = {k: v for k, v in (("X-Forwarded-For", forwarded_for), ("X-Forwarded-Proto", proto)) if v}
    environ = EnvironBuilder(path="/track", base_url=f"{scheme}://portal.example", headers=headers,
                             environ_base={"REMOTE_ADDR": peer}).get_environ()
    return Request(environ)


def test_facing_people_directly_the_peer_is_the_client_whatever_it_writes():
    direct = ProxyHops.from_text("")
    assert direct.client(request("203.0.113.7", "10.0.0.1")) == "203.0.113.7"
    assert not direct.secure(request("203.0.113.7", proto="https"))
    assert direct.secure(request("203.0.113.7", scheme="https"))


def test_behind_one_proxy_the_entry_it_appended_is_the_client_not_what_the_client_wrote():
    ingress = ProxyHops.from_text("1")
    assert ingress.client(request("10.244.1.9", "1.2.3.4, 198.51.100.9")) == "198.51.100.9"
    assert ingress.client(request("10.244.1.9", "198.51.100.9")) == "198.51.100.9"
    assert ingress.client(request("10.244.1.9")) == "10.244.1.9"  # no header: the peer
    assert ingress.secure(request("10.244.1.9", proto="https"))
    assert not ingress.secure(request("10.244.1.9", proto="https, http"))


def test_behind_two_proxies_the_outer_ones_entry_is_the_client():
    two = ProxyHops.from_text("2")
    assert two.client(request("10.244.1.9", "1.2.3.4, 198.51.100.9, 10.0.0.5")) == "198.51.100.9"
    assert two.client(request("10.244.1.9", "10.0.0.5")) == "10.244.1.9"  # fewer entries than proxies: the peer


@pytest.mark.parametrize("bad", ["one", "-1", "11", "1.5"])
def test_a_bad_count_is_refused_when_the_portal_starts(bad):
    with pytest.raises(ValueError, match="TONGBAN_PROXY_HOPS"):
        ProxyHops.from_text(bad)
