"""Staged publishing of approved drafts to WooCommerce, and rollback.

    plan_publish(ledger, store, ...)  -> PublishReport   the dry run: reads only
    publish(ledger, store, ...)       -> PublishReport   recover, check, back up, write
    rollback(ledger, store, run_id= | source_ids=) -> RollbackReport

``store`` is an ``enrich.woo.WooClient`` (anything with ``get_products`` and
``batch_update``). See docs/publish.md for the guarantees and the reasoning behind them.
"""

from enrich.publish.plan import PlanItem
from enrich.publish.publisher import PublishReport, plan_publish, publish
from enrich.publish.records import rows_for_run
from enrich.publish.rollback import RollbackItem, RollbackReport, rollback
from enrich.publish.writer import ProductStore, Settled

__all__ = [
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
