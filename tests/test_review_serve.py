"""`review serve`: the page and its JSON API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from review_helpers import seed_sample_catalog

from enrich.ledger import Ledger
from enrich.review.serve import ReviewServer


@pytest.fixture
def served(ledger: Ledger, db_path: Path) -> Iterator[tuple[ReviewServer, list[int]]]:
    ids = seed_sample_catalog(ledger, script_name=True)
    with ReviewServer(db_path, port=0) as server:
        yield server, ids


def _post(server: ReviewServer, body: dict, **headers: str) -> httpx.Response:
    base = {"Content-Type": "application/json", "X-Enrich-Token": server.token,
            "Origin": server.server.url}
    base.update(headers)
    return httpx.post(f"{server.server.url}/api/decision", content=json.dumps(body),
                      headers={k: v for k, v in base.items() if v}, timeout=10)


def _body(ledger: Ledger, job_id: int, decision: str, **extra: object) -> dict:
    draft = ledger.draft_for(job_id)
    return {"job_id": job_id, "draft_id": draft["id"], "draft_created_at": draft["created_at"],
            "decision": decision, "note": "", **extra}


def test_page_needs_the_token_and_embeds_it(served: tuple[ReviewServer, list[int]]) -> None:
    server, ids = served
    assert httpx.get(f"{server.server.url}/", timeout=10).status_code == 403
    assert httpx.get(f"{server.server.url}/?token=wrong", timeout=10).status_code == 403
    page = httpx.get(server.url, timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>alert(1)</script>" not in page.text
    data = json.loads(re.search(r'id="review-data">(.*?)</script>', page.text, re.S).group(1))
    assert data["config"]["mode"] == "served" and data["config"]["token"] == server.token
    assert [i["job_id"] for i in data["items"]] == ids


def test_decisions_are_written_to_the_ledger(served: tuple[ReviewServer, list[int]],
                                             ledger: Ledger) -> None:
    server, ids = served
    # ids[0] is flagged: the page asks first, so an approval without the answer is refused.
    res = _post(server, _body(ledger, ids[0], "approved"))
    assert res.status_code == 409 and "the draft is flagged (html, length)" in res.json()["reason"]
    assert ledger.get_job(ids[0]).status == "drafted"
    res = _post(server, _body(ledger, ids[0], "approved", flagged_ack=True))
    assert res.status_code == 200, res.text
    assert res.json()["applied"] is True and res.json()["status"] == "approved"
    flags = ledger.draft_for(ids[0])["flags"]
    assert flags and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", f["acknowledged_at"])
                         for f in flags)
    assert res.json()["flags"] == flags  # the page learns the flags were acknowledged
    res = _post(server, _body(ledger, ids[1], "rejected", note="Names a colour it lacks"))
    assert res.status_code == 200, res.text
    assert ledger.get_job(ids[0]).status == "approved"
    assert ledger.get_job(ids[1]).status == "rejected"
    assert ledger.draft_for(ids[1])["reviewer_note"] == "Names a colour it lacks"
    # Undo: the served page may withdraw a decision (back to drafted).
    res = _post(server, _body(ledger, ids[0], "drafted"))
    assert res.status_code == 200 and ledger.get_job(ids[0]).status == "drafted"
    assert not any("acknowledged_at" in f for f in ledger.draft_for(ids[0])["flags"])


def test_bulk_decisions_in_one_request(served: tuple[ReviewServer, list[int]],
                                       ledger: Ledger) -> None:
    """A bulk action is one POST per chunk; each decision is applied or refused alone."""
    server, ids = served
    flagged = ids[1]  # every third draft claims a weight the data lacks (review_helpers)
    assert ledger.draft_for(flagged)["flags"] and not ledger.draft_for(ids[2])["flags"]
    body = {"decisions": [_body(ledger, ids[2], "approved"), _body(ledger, ids[3], "approved"),
                          _body(ledger, flagged, "approved")]}
    res = httpx.post(f"{server.server.url}/api/decisions", content=json.dumps(body),
                     headers={"Content-Type": "application/json",
                              "X-Enrich-Token": server.token}, timeout=10)
    assert res.status_code == 200, res.text
    applied = [r["applied"] for r in res.json()["results"]]
    assert applied == [True, True, False]
    assert {ledger.get_job(i).status for i in (ids[2], ids[3])} == {"approved"}
    assert ledger.get_job(flagged).status == "drafted"
    # A malformed item refuses the whole request before anything is applied.
    bad = {"decisions": [_body(ledger, ids[5], "rejected"),
                         _body(ledger, ids[6], "approved", flagged_ack="yes")]}
    res = httpx.post(f"{server.server.url}/api/decisions", content=json.dumps(bad),
                     headers={"Content-Type": "application/json",
                              "X-Enrich-Token": server.token}, timeout=10)
    assert res.status_code == 400 and "decisions[1]" in res.json()["error"]
    assert "flagged_ack" in res.json()["error"]
    assert ledger.get_job(ids[5]).status == "drafted"
    # The batch route has the same gate as the single one: no token, no change.
    res = httpx.post(f"{server.server.url}/api/decisions", content=json.dumps(body),
                     headers={"Content-Type": "application/json"}, timeout=10)
    assert res.status_code == 403


def test_cross_site_and_tokenless_requests_are_refused(served: tuple[ReviewServer, list[int]],
                                                      ledger: Ledger) -> None:
    server, ids = served
    body = _body(ledger, ids[2], "approved")
    cases = [
        ({"X-Enrich-Token": ""}, 403, "token"),
        ({"X-Enrich-Token": "guess"}, 403, "token"),
        ({"Origin": "https://evil.example"}, 403, "cross-origin"),
        ({"Origin": "null"}, 403, "cross-origin"),
        ({"Sec-Fetch-Site": "cross-site"}, 403, "cross-site"),
        ({"Host": "evil.example"}, 421, "Host"),
        ({"Host": f"rebound.example:{server.port}"}, 421, "Host"),
        ({"Content-Type": "text/plain"}, 415, "application/json"),
    ]
    for headers, status, word in cases:
        res = _post(server, body, **headers)
        assert res.status_code == status, (headers, res.text)
        assert word in res.json()["error"], (headers, res.text)
    page = httpx.get(server.url, headers={"Host": "evil.example"}, timeout=10)
    assert page.status_code == 421 and server.token not in page.text
    assert httpx.get(f"{server.server.url}/api/decision", timeout=10).status_code == 405
    assert ledger.get_job(ids[2]).status == "drafted"


def test_stale_and_malformed_decisions_get_a_reason(served: tuple[ReviewServer, list[int]],
                                                    ledger: Ledger) -> None:
    server, ids = served
    body = _body(ledger, ids[3], "approved")
    body["draft_created_at"] -= 60
    res = _post(server, body)
    assert res.status_code == 409
    assert "the draft changed since the page was exported" in res.json()["reason"]
    res = _post(server, {**_body(ledger, ids[3], "approved"), "decision": "publish"})
    assert res.status_code == 400 and "field 'decision'" in res.json()["error"]
    res = httpx.post(f"{server.server.url}/api/decision", content=b"{nope",
                     headers={"Content-Type": "application/json",
                              "X-Enrich-Token": server.token}, timeout=10)
    assert res.status_code == 400 and "not valid JSON" in res.json()["error"]
    assert ledger.get_job(ids[3]).status == "drafted"


def test_server_listens_on_loopback_only(db_path: Path) -> None:
    Ledger(db_path).close()
    with ReviewServer(db_path, port=0) as server:
        assert server.server.url.startswith("http://127.0.0.1:")
        host, _port = server.server._server.server_address[:2]
        assert host == "127.0.0.1"


def test_cli_serve_on_a_busy_port_says_what_to_do(ledger: Ledger, db_path: Path) -> None:
    from click.testing import CliRunner

    from enrich.cli.main import cli

    with ReviewServer(db_path, port=0) as busy:
        res = CliRunner().invoke(cli, ["--db", str(db_path), "review", "serve", "--port",
                                       str(busy.port)])
    assert res.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{busy.port}" in res.output
    assert "--port 0" in res.output
