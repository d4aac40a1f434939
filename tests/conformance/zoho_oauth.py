"""Zoho conformance: the zoho-creator-sdk's OWN OAuth refresh against vendor-sim's accounts
endpoint (zoho_creator_sdk/auth.py, OAuth2AuthHandler.refresh_auth: a form POST to
{accounts}/oauth/v2/token with refresh_token, client_id, client_secret, grant_type).

When the SDK and the simulator disagree, the simulator is wrong. Run by `cargo xtask ci`
(xtask/src/conformance/zoho.rs), which starts the simulator and sets the environment.
"""

import os
import sys
import types

import requests
from zoho_creator_sdk.auth import OAuth2AuthHandler
from zoho_creator_sdk.exceptions import TokenRefreshError

BASE = os.environ["ZOHO_SIM_URL"]
CLIENT_ID = os.environ["ZOHO_CLIENT_ID"]
CLIENT_SECRET = os.environ["ZOHO_CLIENT_SECRET"]
REFRESH = os.environ["ZOHO_REFRESH_TOKEN"]
OWNER = os.environ["ZOHO_OWNER"]
APP = os.environ["ZOHO_APP"]
REPORT = os.environ["ZOHO_REPORT"]

# The SDK reads only `accounts_url` from its Datacenter enum when refreshing; point it at the
# simulator without touching the SDK.
SIM_DC = types.SimpleNamespace(accounts_url=BASE, api_url=BASE)


def handler(secret=CLIENT_SECRET, refresh=REFRESH):
    return OAuth2AuthHandler(
        client_id=CLIENT_ID,
        client_secret=secret,
        redirect_uri="http://localhost/unused-by-refresh",
        refresh_token=refresh,
        datacenter=SIM_DC,
    )


def main():
    h = handler()
    # No token yet: the SDK refreshes on first use and reads access_token and expires_in.
    headers = h.get_auth_headers()
    auth = headers["Authorization"]
    assert auth.startswith("Zoho-oauthtoken "), auth
    first = h.access_token
    assert first, "the SDK got no access token"
    assert h.token_expiry is not None, "the SDK read no expiry"

    # A fresh token is reused, not refreshed again.
    h.get_auth_headers()
    assert h.access_token == first, "the SDK refreshed a token that was still fresh"

    # An explicit refresh mints another token.
    h.refresh_auth()
    assert h.access_token != first, "a second refresh returned the same token"

    # The token the SDK obtained is accepted by the Creator bulk endpoints (seed 001's header).
    url = f"{BASE}/api/bulk/v2/{OWNER}/{APP}/report/{REPORT}/read"
    r = requests.post(url, headers=dict(h.get_auth_headers()), timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["code"] == 3000, r.text

    # A token the server does not know: 401 with Zoho's code 1030, the only code worth a
    # refresh (Zoho's status-code page).
    r = requests.post(
        url, headers={"Authorization": "Zoho-oauthtoken 1000.unknown.token"}, timeout=10
    )
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.json()["code"] == 1030, r.text

    # A wrong client secret: the SDK raises its own error (the reply has no access_token).
    try:
        handler(secret="not-the-secret").refresh_auth()
    except TokenRefreshError:
        pass
    else:
        raise AssertionError("a wrong client secret was accepted")

    # An unknown refresh token, likewise.
    try:
        handler(refresh="1000.not-a-refresh-token").refresh_auth()
    except TokenRefreshError:
        pass
    else:
        raise AssertionError("an unknown refresh token was accepted")

    print("    zoho-creator-sdk OAuth refresh: ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"zoho_oauth: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
