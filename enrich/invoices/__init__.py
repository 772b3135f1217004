"""Invoices: PDF to a validated ``Invoice`` record on the same ledger and worker as products.

``pdf`` reads a file (text with layout, tables, embedded CII XML, OCR); ``cii`` maps CII XML
to the schema and back; ``offline`` is the heuristic baseline extractor; ``checks`` are the
named flags on every invoice draft; ``intake``, ``jobs``, ``export`` and ``evaluate`` are the
use cases the ``enrich invoices`` commands call.
"""

from enrich.invoices.schema import Invoice, InvoiceLine, Party, Supplier, TaxLine

__all__ = ["Invoice", "InvoiceLine", "Party", "Supplier", "TaxLine"]
