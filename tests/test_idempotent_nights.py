"""Issue 15: what enrich published stays done, and the store's own rewriting is the baseline.

The whole flow through the CLI against the sandbox store (which unslashes and kses'es copy
as WordPress does): sync -> run (offline provider) -> approve -> publish -> sync again,
over a catalog where several products share a name and the supplier text holds literal
``\\n``. The second sync must queue nothing and the second publish write nothing; a
rollback must put every product back byte for byte; a person's edit after the publish is
still a conflict, and re-queued only when it makes a field missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.ledger import Ledger
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.store import RunningStore, serve_store
from tests.publish_helpers import copy_fields
from tests.woo_helpers import KEY, SECRET, options

SHARED_NAME = "Bamboo Mug"


def catalog(n: int = 24) -> list[dict[str, Any]]:
    """Synthetic supplier data; six products called the same, several with literal ``\\n``
    (a backslash and an ``n``) in their supplier text.

    Copy is as a REST import leaves it (``&amp;``, never a bare ``&``): a bare ``&`` only
    gets into a store through an administrator's unfiltered save, and no REST write, so no
    rollback, can put one back (kses turns it into ``&amp;``)."""
    products = list(synthetic_catalog(n, seed=15))
    for p in products[:6]:
        p["name"] = SHARED_NAME
    for p in products[4:10]:
        p["short_description"] = "Sturdy and light.\\nDishwasher safe.\\tHand made."
    products[10]["description"] = ("<p>Supplier sheet:\\nglazed inside &amp; out,\\nfood safe "
                                   "and packed in recycled card for shipping.</p>")
    return products


def config_for(tmp_path: Path, running: RunningStore) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[store]
url = "{running.url}"
seo_plugin = "yoast"
[sync]
fields = ["description", "short_description", "seo_title", "meta_description"]
[llm]
provider = "offline"
model = "offline-v1"
""")
    return path


class Enrich:
    """The CLI as a store owner runs it, one command at a time, JSON where it has it."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.env = {"WOO_CONSUMER_KEY": KEY, "WOO_CONSUMER_SECRET": SECRET}

    def __call__(self, *args: str, code: int | None = 0) -> str:
        result = CliRunner().invoke(cli, ["--config", str(self.config), *args], env=self.env)
        if code is not None:
            assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    def json(self, *args: str, code: int | None = 0) -> dict[str, Any]:
        return json.loads(self(*args, "--json", code=code))


def store_copy(running: RunningStore) -> dict[int, dict[str, Any]]:
    return {p["id"]: copy_fields(p) for p in running.store.products()}


def first_night(enrich: Enrich) -> dict[str, Any]:
    enrich("sync")
    enrich("run")
    enrich("review", "approve", "--all")
    return enrich.json("publish")


def test_published_copy_is_done_and_a_rollback_restores_every_product(tmp_path: Path) -> None:
    with serve_store(catalog(), options=options()) as srv:
        enrich = Enrich(config_for(tmp_path, srv))
        before = store_copy(srv)
        published = first_night(enrich)
        after_publish = store_copy(srv)
        resync = enrich.json("sync")
        republish = enrich.json("publish")
        rolled = enrich.json("rollback", "--run", str(published["run_id"]))
        after_rollback = store_copy(srv)
    written = published["counts"]["written"]
    assert written >= 20, published["counts"]
    # The drafts replaced the literal \n copy, and the store kept exactly what was approved.
    assert all("\\" not in c["short_description"] for c in after_publish.values())
    # Published means done: the next night queues nothing and publish has nothing to write.
    assert (resync["queued"], resync["superseded"]) == (0, 0), resync
    assert resync["complete"] == resync["scanned"] == len(before)
    assert republish["counts"]["written"] == 0 and republish["counts"]["batch_requests"] == 0
    # The rollback saw enrich's own (store-normalised) writes, not edits: every product back.
    assert rolled["counts"]["rolled_back"] == written, rolled
    assert rolled["counts"]["conflict"] == rolled["counts"]["error"] == 0, rolled
    assert after_rollback == before


def test_a_person_edit_after_publish_is_a_conflict_and_requeued_only_when_missing(
        tmp_path: Path) -> None:
    with serve_store(catalog(12), options=options()) as srv:
        enrich = Enrich(config_for(tmp_path, srv))
        published = first_night(enrich)
        kept_edit = "<p>Rewritten by the shop owner: " + "hand thrown stoneware. " * 4 + "</p>"
        srv.store.edit(2, description=kept_edit)
        srv.store.edit(3, short_description="TBD")
        resync = enrich.json("sync")
        with Ledger(tmp_path / "enrich.db") as ledger:
            open_jobs = {j.source_id: j.payload["fields"] for j in ledger.list_jobs()
                         if j.status == "pending"}
        rolled = enrich.json("rollback", "--run", str(published["run_id"]), code=None)
        now = {p["id"]: p for p in srv.store.products()}
    # Only the edit that made a field missing is queued again, for that field only.
    assert resync["queued"] == 1 and open_jobs == {"3": ["short_description"]}
    conflicts = {i["source_id"]: i["reason"] for i in rolled["items"]
                 if i["outcome"] == "conflict"}
    assert set(conflicts) == {"2", "3"}, rolled
    assert "edited in the store after the publish" in conflicts["2"]
    assert rolled["counts"]["rolled_back"] == rolled["counts"]["selected"] - 2
    assert now[2]["description"] == kept_edit and now[3]["short_description"] == "TBD"
