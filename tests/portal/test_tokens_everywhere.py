"""Every instance of a city checks API tokens the same way (shared.tokens through shared.web): the
deployment's key works; another key, another key under our kid, HS256 keyed with the public key set (algorithm
confusion) are refused 401; a subject the portal disables is refused by every instance within seconds."""
import base64
import hashlib
import hmac
import json
import time

from services.portal import directory
from shared import tokens
from tests.support import PUBLIC_KEYS, SIGNING_KEY, TOWN_A, TOWN_B, wait_for

# one GET per instance that a city-scope service token may read
READS = {f"intake-{TOWN_A}": "/cases", f"intake-{TOWN_B}": "/cases", "approval-minzheng": "/work-items",
         "approval-renshe": "/work-items", "agent": "/stats", "notify": "/stats", "evaluation": "/stats"}
SUBJECT = "ops-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_the_key_set(subject: str) -> str:
    """What someone holding only the public key set could try: HS256 keyed with the JWKS text, our kid."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": SIGNING_KEY.kid}).encode())
    claims = _b64(json.dumps({"sub": subject, "role": "service", "scope": "city", "iat": now, "exp": now + 600,
                              "iss": tokens.ISSUER, "aud": tokens.AUDIENCE}).encode())
    signature = hmac.new(PUBLIC_KEYS.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


def refusal(response) -> str:
    assert response.status_code == 401, f"{response.status_code} {response.text}"
    return response.json()["message"]


def test_every_instance_checks_tokens_and_revocations_alike(city):
    city.start()  # every instance but the portal
    city.start("portal")
    assert set(READS) == {s.instance for s in city.layout if s.service != "portal"}, "a new instance: add a read"
    with city.cluster.platform("portal").store.transaction() as tx:
        directory.add_user(tx, SUBJECT, "运维", "city_admin", "city", "correct horse battery", "test")

    good = city.token("service", "city", SUBJECT)
    unknown_kid = tokens.issue(tokens.SigningKey.generate(), SUBJECT, "service", "city")
    impostor = tokens.issue(tokens.SigningKey(tokens.SigningKey.generate().private, SIGNING_KEY.kid), SUBJECT,
                            "service", "city")
    confused = hs256_with_the_key_set(SUBJECT)
    for instance, path in READS.items():
        assert city.call("GET", instance, path, good).status_code == 200, instance
        assert refusal(city.call("GET", instance, path, unknown_kid)) == tokens.UNKNOWN_KEY, instance
        assert refusal(city.call("GET", instance, path, impostor)) == "bad signature", instance
        assert refusal(city.call("GET", instance, path, confused)) == "malformed token", instance
        assert refusal(city.call("GET", instance, path)) == "missing bearer token", instance

    with city.cluster.platform("portal").store.transaction() as tx:
        directory.set_disabled(tx, SUBJECT, True, "test")
    started = time.monotonic()
    for instance, path in READS.items():
        wait_for(lambda: city.call("GET", instance, path, good).status_code == 401,  # noqa: B023 (called at once)
                 timeout=max(0.5, 10 - (time.monotonic() - started)), what=f"{instance} refusing the disabled subject")
        assert refusal(city.call("GET", instance, path, good)) == tokens.REVOKED
    # nobody else is affected
    other = city.token("service", "city", "ops-2")
    for instance, path in READS.items():
        assert city.call("GET", instance, path, other).status_code == 200, instance
