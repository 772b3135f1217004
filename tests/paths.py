"""Where the shared material is: ../shared beside the checkout (as on CI), not a fixed path."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
CONTRACT_DIR = SHARED / "woocommerce-contract"
FIXTURES = ROOT / "fixtures"
