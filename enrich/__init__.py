"""enrich: fill the gaps in a WooCommerce catalog overnight, safely."""

__version__ = "0.1.0"
