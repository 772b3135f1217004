"""Where the test data is: ``fixtures/`` inside the repository, never a sibling folder.

A clone of the repository is all a test may rely on; each fixture folder carries the sources
and licences of what was copied into it (``SOURCES.md`` / ``README.md``).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PRODUCTS = FIXTURES / "products"
CONTRACT_DIR = FIXTURES / "woocommerce-contract"
WOO_SAMPLE_CSV = PRODUCTS / "woocommerce" / "sample_products.csv"
INVOICES = FIXTURES / "invoices"
