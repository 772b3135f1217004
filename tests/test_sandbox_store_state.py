"""The store's state file, restarts, and the ``enrich sandbox store`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import StoreOptions, serve_store
from enrich.sandbox.tls import client_context
from tests.store_helpers import SAMPLE_CSV, OAuth1


def _client(running: object) -> httpx.Client:
    ca_path = running.ca_path  # type: ignore[attr-defined]
    return httpx.Client(base_url=running.api_url,  # type: ignore[attr-defined]
                        verify=client_context(ca_path),
                        auth=(running.consumer_key, running.consumer_secret),  # type: ignore[attr-defined]
                        timeout=10)


def test_state_file_holds_edit_context_after_every_write(tmp_path: Path) -> None:
    state = tmp_path / "store-state.json"
    options = StoreOptions(state_path=state)
    with serve_store(SAMPLE_CSV, options=options, https=True) as running, \
            _client(running) as client:
        assert not state.exists()  # nothing written before the first write
        put = client.put("/products/3", json={"short_description": "Published by enrich",
                                              "meta_data": [{"key": "rank_math_title",
                                                             "value": "RM"}]})
        assert put.status_code == 200
        saved = json.loads(state.read_text())
        assert len(saved) == 25  # parents and variations, as GET /products/<id> serves them
        by_id = {p["id"]: p for p in saved}
        for pid in (1, 3, 15):
            live = client.get(f"/products/{pid}", params={"context": "edit"}).json()
            assert by_id[pid] == live
        batch = client.post("/products/batch", json={"update": [
            {"id": 4, "description": "<p>Batch copy</p>"}]})
        assert batch.status_code == 200
        assert {p["id"]: p for p in json.loads(state.read_text())}[4]["description"] == \
            "<p>Batch copy</p>"
        assert [p.name for p in tmp_path.iterdir()] == ["store-state.json"]  # no temp files


def test_restart_resumes_from_state_which_wins_over_the_catalog(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with serve_store(SAMPLE_CSV, options=StoreOptions(state_path=state), https=True) as first, \
            _client(first) as client:
        client.put("/products/3", json={"name": "Renamed before restart"})
        created = client.post("/products", json={"name": "Created before restart"}).json()
        before = client.get("/products/3", params={"context": "edit"}).json()
    other_catalog = list(synthetic_catalog(5))
    with serve_store(other_catalog, options=StoreOptions(state_path=state),
                     https=True) as second, _client(second) as client:
        after = client.get("/products/3", params={"context": "edit"}).json()
        assert after["name"] == "Renamed before restart"
        assert after["date_modified_gmt"] == before["date_modified_gmt"]
        assert after["meta_data"] == before["meta_data"]
        assert client.get("/products", params={"per_page": 1}).headers["X-WP-Total"] == "19"
        again = client.post("/products", json={"name": "After restart"}).json()
        assert again["id"] > created["id"]  # ids continue, never reused
        variations = client.get("/products/1/variations").json()
        assert len(variations) == 3


def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    state = tmp_path / "cli-state.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-c", "from enrich.cli import main; main()", "sandbox", "store",
         "--port", "0", "--catalog", str(SAMPLE_CSV), "--state", str(state),
         "--consumer-key", "ck_cli", "--consumer-secret", "cs_cli", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("WooCommerce sandbox store: http://127.0.0.1:"), first
        url = first.split()[3]
        assert "127.0.0.1" in url
        with httpx.Client(base_url=f"{url}/wp-json/wc/v3", timeout=10,
                          auth=OAuth1("ck_cli", "cs_cli")) as client:
            response = client.put("/products/5", json={"short_description": "via CLI"})
        assert response.status_code == 200, response.text
        assert {p["id"]: p for p in json.loads(state.read_text())}[5][
            "short_description"] == "via CLI"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "stopped" in out


def test_non_ascii_and_lone_surrogates_are_served_and_saved(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    catalog = [{"id": 1, "name": "Café “Oak” chair", "description": "bad \udcff byte"}]
    with serve_store(catalog, options=StoreOptions(state_path=state), https=True) as running, \
            _client(running) as client:
        got = client.get("/products/1", params={"context": "edit"})
        assert got.status_code == 200
        assert b"\\u00e9" in got.content  # escaped as WordPress's json_encode does
        assert got.json()["name"] == "Café “Oak” chair"
        assert got.json()["description"] == "bad \udcff byte"
        assert client.put("/products/1", json={"short_description": "ünïcode"}
                          ).status_code == 200
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved[0]["short_description"] == "ünïcode"
    assert saved[0]["description"] == "bad \udcff byte"
