"""Human review of drafts: the HTML page (file or served), decisions import, bulk approve.

Nothing reaches the store without a person's approval; this package is where it is given.
"""

from enrich.review.decisions import (
    ApplyResult,
    Decision,
    DecisionsFile,
    apply_decision,
    apply_decisions,
    approve_jobs,
    parse_decisions,
    reject_jobs,
)
from enrich.review.export import ExportResult, export_review, render_page
from enrich.review.queries import ReviewItem, review_items
from enrich.review.sample import stratified_sample
from enrich.review.serve import ReviewServer

__all__ = [
    "ApplyResult",
    "Decision",
    "DecisionsFile",
    "ExportResult",
    "ReviewItem",
    "ReviewServer",
    "apply_decision",
    "apply_decisions",
    "approve_jobs",
    "export_review",
    "parse_decisions",
    "reject_jobs",
    "render_page",
    "review_items",
    "stratified_sample",
]
