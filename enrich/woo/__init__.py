"""The WooCommerce side of enrich: REST client, auth, SEO meta mapping, write validation."""

from enrich.woo.client import BatchItemResult, PageBody, ProductPage, WooClient
from enrich.woo.seo import SEO_FIELDS, meta_keys, read_seo, to_meta_data

__all__ = [
    "SEO_FIELDS",
    "BatchItemResult",
    "PageBody",
    "ProductPage",
    "WooClient",
    "meta_keys",
    "read_seo",
    "to_meta_data",
]
