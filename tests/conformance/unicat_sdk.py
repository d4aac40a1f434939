"""The official Unicat SDK (unicat 0.7.18) against vendor-sim's Unicat simulator.

Run by `cargo xtask ci` (xtask/src/conformance/unicat.rs), which starts the simulator and sets
UNICAT_BASE_URL, UNICAT_PROJECT, UNICAT_API_KEY and EXPECT_RECORDS. Every step uses the SDK's
own calls: `Unicat.connect` (login, `cc.`-prefixed init data), `walk_record_query` (its
`page.size` / `page.cursor` loop), `api.prepare_for_job` + `UnicatJob.track` (its job tracker
over `/sync/get`), and its JWT adoption from every reply's Authorization header.

When the SDK and the simulator disagree, the simulator is wrong. Exits non-zero on any
mismatch (an assertion or an exception from inside the SDK).
"""

import os
import sys

from unicat import Unicat
from unicat.job import UnicatJob
from unicat.utils import DuckObject

BASE_URL = os.environ["UNICAT_BASE_URL"]
PROJECT = os.environ["UNICAT_PROJECT"]
API_KEY = os.environ["UNICAT_API_KEY"]
EXPECT_RECORDS = int(os.environ["EXPECT_RECORDS"])
FOLDER = "r-f2"
PER_FOLDER = int(os.environ["PER_FOLDER"])


def check(condition, message):
    if not condition:
        print(f"unicat_sdk.py: MISMATCH: {message}", file=sys.stderr)
        sys.exit(1)


def children_of(unicat, parent):
    """Live children, through the SDK's generic call (bulk/get with a children selection)."""
    gids = []
    request = {"selection": [{"children": parent}], "page.size": 10}
    while True:
        success, result = unicat.api.call("/records/bulk/get", request)
        check(success, f"bulk/get of {parent}'s children failed: {result}")
        gids.extend(result["records"])
        if not result["page.cursor"]:
            return gids
        request["page.cursor"] = result["page.cursor"]


def run_job(unicat, endpoint, selection):
    """A bulk mutation tracked by the SDK's own job tracker through the sync feed."""
    cursor = unicat.api.prepare_for_job()
    check(isinstance(cursor, int), f"/sync/cursors gave no cc.cursor: {cursor!r}")
    success, result = unicat.api.call(endpoint, {"selection": selection})
    check(success, f"{endpoint} failed: {result}")
    job = UnicatJob(unicat, cursor, result["job.token"], None)
    statuses = list(job.track(timeout_in_seconds=60, poll_interval_in_seconds=0.05))
    check(job.status == "done", f"{endpoint}: job ended {job.status} after {statuses}")
    check("error" not in job.info, f"{endpoint}: job info reports an error: {job.info}")
    check(job.name.startswith("bulk_"), f"{endpoint}: job name {job.name!r}")
    return job


def main():
    unicat = Unicat(BASE_URL, PROJECT, API_KEY, None)

    # 1. Connect: the login reply's JWT header and its cc.-prefixed init data.
    check(unicat.connect(), "connect() failed")
    check(PROJECT in unicat.projects, f"cc.projects lacks the project: {unicat.projects}")
    check(len(unicat.users) >= 1, "cc.users is empty")
    check(isinstance(unicat.api_version, str), f"cc.version {unicat.api_version!r}")
    check(unicat.api.cc_cursor > 0, "no cc.cursor after connect")
    first_jwt = unicat.api._auth_header

    # 2. Bulk get through the SDK's own page.size / page.cursor loop, over several pages.
    query = DuckObject(q="product", filter=None)
    seen = []
    sizes = set()
    for size, record in unicat.walk_record_query("en", query):
        sizes.add(size)
        seen.append(record.gid)
        check(record.title.lower().startswith("product"), f"record {record.gid}")
    check(len(seen) == EXPECT_RECORDS, f"walk_record_query gave {len(seen)} records")
    check(len(set(seen)) == len(seen), "walk_record_query repeated records")
    check(sizes == {EXPECT_RECORDS}, f"records.size {sizes}")

    # 3. Bulk delete and undelete, tracked through the sync feed by the SDK's tracker.
    before = children_of(unicat, FOLDER)
    check(len(before) == PER_FOLDER, f"{FOLDER} has {len(before)} children")
    run_job(unicat, "/records/bulk/delete", [{"children": FOLDER}])
    check(children_of(unicat, FOLDER) == [], "children left after the delete")
    run_job(unicat, "/records/bulk/undelete", [{"children": FOLDER}])
    check(children_of(unicat, FOLDER) == before, "children not restored by the undelete")

    # 4. The SDK's own sync loop (cc and project cursors, `warning` = more pending) catches
    # up with everything the jobs published.
    check(unicat.sync(), "sync() failed")
    check(unicat.api.cc_cursor >= 1000, f"cc cursor after sync: {unicat.api.cc_cursor}")

    # 5. The JWT rotated along the way and the SDK kept going with the new ones.
    check(unicat.api._auth_header is not None, "the SDK lost its JWT")
    check(unicat.api._auth_header != first_jwt, "the JWT never rotated")
    print(f"unicat_sdk.py: ok ({len(seen)} records walked, 2 jobs tracked)")


if __name__ == "__main__":
    main()
