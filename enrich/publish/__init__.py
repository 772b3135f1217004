"""Staged publishing of approved drafts to WooCommerce, and rollback.

    plan_publish(ledger, store, ...)  -> PublishReport   the dry run: reads only
    publish(ledger, store, ...)       -> PublishReport   recover, check, back up, write
    rollback(ledger, store, run_id= | source_ids=) -> RollbackReport

``store`` is an ``enrich.woo.WooClient`` (anything with ``get_products``, ``batch_update``
and their variation counterparts, ``get_variations`` and ``batch_update_variations``).
See docs/publish.md for the guarantees and the reasoning behind them.
"""

from enrich.ledger.publishes import rows_for_run
from enrich.publish.plan import PlanItem
from enrich.publish.publisher import plan_publish, publish
from enrich.publish.reports import CommandReport, PublishReport, RollbackReport
from enrich.publish.rollback import RollbackItem, rollback
from enrich.publish.writer import ProductStore, Settled

__all__ = [
    "CommandReport",
    "PlanItem",
    "ProductStore",
    "PublishReport",
    "RollbackItem",
    "RollbackReport",
    "Settled",
    "plan_publish",
    "publish",
    "rollback",
    "rows_for_run",
]
