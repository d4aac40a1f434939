"""Zoho conformance: seed 001's bulk-read calls made with plain `requests`, against
vendor-sim, in both API forms (v2: /api/bulk/v2/..., seed 001; v2.1: /creator/v2.1/bulk/...,
Zoho's v2.1 bulk pages).

As the seed's BulkAPI class does: refresh a token (query parameters, Zoho's OAuth page), create
a bulk-read job with `Authorization: Zoho-oauthtoken ...`, poll its status until "Completed",
take `details.result.download_url` (relative to the API host), download the ZIP, parse the
CSV inside it, and follow the record cursor (`recordCursor` header, Zoho's download page) with
`{"query": {"record_cursor": ...}}` until the last batch, over several jobs.

When these calls and the simulator disagree, the simulator is wrong.
"""

import csv
import io
import os
import sys
import time
import zipfile

import requests

BASE = os.environ["ZOHO_SIM_URL"]
CLIENT_ID = os.environ["ZOHO_CLIENT_ID"]
CLIENT_SECRET = os.environ["ZOHO_CLIENT_SECRET"]
REFRESH = os.environ["ZOHO_REFRESH_TOKEN"]
OWNER = os.environ["ZOHO_OWNER"]
APP = os.environ["ZOHO_APP"]
REPORT = os.environ["ZOHO_REPORT"]
ROWS = int(os.environ["ZOHO_REPORT_ROWS"])
CAP = int(os.environ["ZOHO_JOB_ROW_CAP"])

FORMS = {
    "v2": "/api/bulk/v2",
    "v2.1": "/creator/v2.1/bulk",
}


def token():
    r = requests.post(
        f"{BASE}/oauth/v2/token",
        params={
            "refresh_token": REFRESH,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "refresh_token",
        },
        timeout=10,
    )
    assert r.status_code == 200, (r.status_code, r.text)
    data = r.json()
    # The seed's token dicts: access_token, api_domain, token_type, expires_in.
    for key in ("access_token", "api_domain", "token_type", "expires_in"):
        assert key in data, (key, data)
    return data["access_token"]


def check_details(details, job_id=None):
    # Seed 001's create and status replies.
    for key in ("id", "operation", "created_by", "created_time", "status"):
        assert key in details, (key, details)
    assert isinstance(details["id"], str), details
    assert details["operation"] == "read", details
    if job_id is not None:
        assert details["id"] == job_id, details


def create(prefix, headers, body):
    url = f"{BASE}{prefix}/{OWNER}/{APP}/report/{REPORT}/read"
    if body is None:
        r = requests.post(url, headers=headers, timeout=10)
    else:
        r = requests.post(url, headers=headers, json=body, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    data = r.json()
    assert data["code"] == 3000, data
    check_details(data["details"])
    assert data["details"]["status"].upper().replace("-", " ") == "IN PROGRESS", data
    return data["details"]["id"]


def wait(prefix, headers, job_id):
    url = f"{BASE}{prefix}/{OWNER}/{APP}/report/{REPORT}/read/{job_id}"
    deadline = time.monotonic() + 60
    while True:
        r = requests.get(url, headers=headers, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        data = r.json()
        assert data["code"] == 3000, data
        details = data["details"]
        check_details(details, job_id)
        # Seed 001 writes "Completed", the v2.1 page "COMPLETED": compared without case.
        if details["status"].upper() == "COMPLETED":
            return details
        assert time.monotonic() < deadline, f"job {job_id} never completed"
        time.sleep(0.3)


def download(prefix, headers, details):
    result = details["result"]
    url = result["download_url"]
    assert url.startswith(f"{prefix}/"), (prefix, url)
    # Seed 001: the API host + download_url.
    r = requests.get(BASE + url, headers=headers, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None, "a CRC failed"
    names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
    assert len(names) == 1, archive.namelist()
    text = archive.read(names[0]).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == result["count"], (len(rows), result["count"])
    cursor = r.headers.get("recordCursor")
    # The status reply and the download header name the same cursor (absent on the last).
    assert cursor == result.get("record_cursor"), (cursor, result.get("record_cursor"))
    return rows, cursor


def export(form, first_body):
    prefix = FORMS[form]
    headers = {"Authorization": f"Zoho-oauthtoken {token()}"}
    rows, jobs, body = [], 0, first_body
    while True:
        job_id = create(prefix, headers, body)
        jobs += 1
        details = wait(prefix, headers, job_id)
        batch, cursor = download(prefix, headers, details)
        rows.extend(batch)
        if not cursor:
            break
        # Follow-up jobs send the cursor alone (Zoho's limitations page).
        body = {"query": {"record_cursor": cursor}}
        assert jobs < 100, "the cursor never ended"
    ids = [int(r["ID"]) for r in rows]
    assert len(ids) == ROWS, (form, len(ids), ROWS)
    assert ids == sorted(set(ids)), f"{form}: rows repeated or out of order"
    want_jobs = -(-ROWS // CAP)
    assert jobs == want_jobs, (form, jobs, want_jobs)
    print(f"    seed 001 bulk read ({form}): {len(rows)} rows over {jobs} jobs: ok")
    return rows


def main():
    # The seed's class sends no body at all.
    rows = export("v2", None)
    assert set(rows[0].keys()) >= {"ID", "Email"}, rows[0].keys()
    # v2.1 with a documented query: fields and max_records.
    rows = export("v2.1", {"query": {"fields": ["ID", "Email"], "max_records": 100000}})
    assert list(rows[0].keys()) == ["ID", "Email"], rows[0].keys()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"zoho_bulk_read: FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
