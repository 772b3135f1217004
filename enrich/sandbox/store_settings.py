"""The store settings the sandbox serves: units and currency, as WooCommerce 11 answers them.

enrich reads four settings (weight and dimension units, currency, price decimals) to read bare
``weight``/``dimensions`` values and prices correctly, so the sandbox serves those four with
the bodies recorded in ``fixtures/woocommerce-contract/settings.json``, the group list in
full, and the recorded 404s for anything else. A group's listing holds only the settings
served here (a real store lists ~30 per group); values come from ``StoreOptions`` so a test
or a shop owner's trial can run a store that weighs in grams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enrich.sandbox.store_replies import Reply, error_reply

SETTING_ALLOW = "GET, POST, PUT, PATCH"
GROUP_ALLOW = "GET"

# (id, label, description, parent_id, sub_groups), in the order the real store lists them.
_EMAILS: tuple[tuple[str, str, str], ...] = (
    ("email_new_order", "New order", "New order emails are sent to chosen recipient(s) when a "
     "new order is received."),
    ("email_cancelled_order", "Cancelled order", "Cancelled order emails are sent to chosen "
     "recipient(s) when orders have been marked cancelled (if they were previously pending, "
     "processing, or on-hold)."),
    ("email_customer_cancelled_order", "Cancelled order", "Cancelled order emails are sent to "
     "customers when their orders have been marked cancelled (if they were previously "
     "processing or on-hold)."),
    ("email_failed_order", "Failed order", "Failed order emails are sent to chosen "
     "recipient(s) when orders have been marked failed (if they were previously pending or "
     "on-hold)."),
    ("email_customer_failed_order", "Failed order", "Order failed emails are sent to customers "
     "when their orders are marked as failed."),
    ("email_customer_on_hold_order", "Order on-hold", "This is an order notification sent to "
     "customers containing order details after an order is placed on-hold from Pending, "
     "Cancelled or Failed order status."),
    ("email_customer_processing_order", "Processing order", "This is an order notification "
     "sent to customers containing order details after payment."),
    ("email_customer_completed_order", "Completed order", "Order complete emails are sent to "
     "customers when their orders are marked completed and usually indicate that their orders "
     "have been shipped."),
    ("email_customer_refunded_order", "Refunded order", "Order refunded emails are sent to "
     "customers when their orders are refunded."),
    ("email_customer_invoice", "Order details", "Order detail emails can be sent to customers "
     "containing their order information and payment links."),
    ("email_customer_note", "Customer note", "Customer note emails are sent when you add a "
     "note to an order."),
    ("email_customer_reset_password", "Reset password", "Send an email to customers notifying "
     "them that their password has been reset"),
    ("email_customer_new_account", "New account", "Send an email to customers notifying them "
     "that they have created an account"),
    ("email_admin_payment_gateway_enabled", "Payment gateway enabled", "Payment gateway "
     "enabled emails are sent to chosen recipient(s) when a payment gateway is enabled."),
    ("email_customer_pos_completed_order", "POS completed order", "Order complete emails are "
     "sent to customers when their POS orders are marked completed."),
    ("email_customer_pos_refunded_order", "POS refunded order", "Order refunded emails are "
     "sent to customers when their POS orders are refunded."),
    ("email_customer_verify_email", "Confirm email address", "Sent to customers with a link to "
     "confirm they own their account email address."),
)
GROUPS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("wc_admin", "WooCommerce Admin", "Settings for WooCommerce admin reporting.", "", ()),
    ("general", "General", "", "", ()),
    ("products", "Products", "", "", ()),
    ("tax", "Tax", "", "", ()),
    ("shipping", "Shipping", "", "", ()),
    ("checkout", "Payments", "", "", ()),
    ("account", "Accounts &amp; Privacy", "", "", ()),
    ("email", "Emails", "", "", tuple(e[0] for e in _EMAILS)),
    ("integration", "Integration", "", "", ()),
    ("site-visibility", "Site visibility", "", "", ()),
    ("point-of-sale", "Point of Sale", "", "", ()),
    ("advanced", "Advanced", "", "", ()),
    *((sid, label, text, "email", ()) for sid, label, text in _EMAILS),
)
_GROUP_IDS = {g[0] for g in GROUPS}

WEIGHT_UNITS = ("kg", "g", "lbs", "oz")
DIMENSION_UNITS = ("m", "cm", "mm", "in", "yd")
# The recording's currency options are trimmed to five; the store's own currency is added.
_CURRENCY_OPTIONS = {
    "AED": "United Arab Emirates dirham (&#x62f;.&#x625;) — AED",
    "AFN": "Afghan afghani (&#x60b;) — AFN",
    "ALL": "Albanian lek (L) — ALL",
    "AMD": "Armenian dram (AMD) — AMD",
    "ANG": "Netherlands Antillean guilder (&fnof;) — ANG",
}


@dataclass(frozen=True)
class StoreSettings:
    """The values the sandbox store answers with (the real store's defaults)."""

    weight_unit: str = "lbs"
    dimension_unit: str = "in"
    currency: str = "USD"
    price_decimals: int = 2

    def __post_init__(self) -> None:
        if self.weight_unit not in WEIGHT_UNITS:
            raise ValueError(f"weight unit {self.weight_unit!r} is not one of "
                             f"{', '.join(WEIGHT_UNITS)}")
        if self.dimension_unit not in DIMENSION_UNITS:
            raise ValueError(f"dimension unit {self.dimension_unit!r} is not one of "
                             f"{', '.join(DIMENSION_UNITS)}")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"currency {self.currency!r} is not an ISO 4217 code like EUR")
        if not 0 <= self.price_decimals <= 8:
            raise ValueError(f"price decimals {self.price_decimals} is not between 0 and 8")


def _definitions(values: StoreSettings) -> dict[str, dict[str, dict[str, Any]]]:
    """group -> setting id -> body without ``group_id`` and ``_links``, in listing order."""
    currencies = dict(_CURRENCY_OPTIONS)
    currencies.setdefault(values.currency, f"{values.currency} — {values.currency}")
    return {
        "products": {
            "woocommerce_weight_unit": {
                "id": "woocommerce_weight_unit", "label": "Weight unit",
                "description": "This controls what unit you will define weights in.",
                "type": "select", "default": "lbs", "options": {u: u for u in WEIGHT_UNITS},
                "tip": "This controls what unit you will define weights in.",
                "value": values.weight_unit},
            "woocommerce_dimension_unit": {
                "id": "woocommerce_dimension_unit", "label": "Dimensions unit",
                "description": "This controls what unit you will define lengths in.",
                "type": "select", "default": "in",
                "options": {u: u for u in DIMENSION_UNITS},
                "tip": "This controls what unit you will define lengths in.",
                "value": values.dimension_unit},
        },
        "general": {
            "woocommerce_currency": {
                "id": "woocommerce_currency", "label": "Currency",
                "description": "This controls what currency prices are listed at in the "
                               "catalog and which currency gateways will take payments in.",
                "type": "select", "default": "USD", "options": currencies,
                "tip": "This controls what currency prices are listed at in the catalog and "
                       "which currency gateways will take payments in.",
                "value": values.currency},
            "woocommerce_price_num_decimals": {
                "id": "woocommerce_price_num_decimals", "label": "Number of decimals",
                "description": "This sets the number of decimal points shown in displayed "
                               "prices.",
                "type": "number", "default": "2",
                "tip": "This sets the number of decimal points shown in displayed prices.",
                "value": str(values.price_decimals)},
        },
    }


def _setting_links(base: str, group: str, sid: str) -> dict[str, Any]:
    api = f"{base}/wp-json/wc/v3/settings/{group}"
    return {"self": [{"href": f"{api}/{sid}",
                      "targetHints": {"allow": SETTING_ALLOW.split(", ")}}],
            "collection": [{"href": api}]}


def list_groups(base: str) -> list[dict[str, Any]]:
    return [{"id": gid, "label": label, "description": text, "parent_id": parent,
             "sub_groups": list(subs),
             "_links": {"options": [{"href": f"{base}/wp-json/wc/v3/settings/{gid}"}]}}
            for gid, label, text, parent, subs in GROUPS]


def _group(group: str) -> None:
    if group not in _GROUP_IDS:
        raise error_reply(404, "rest_setting_setting_group_invalid", "Invalid setting group.")


def list_group(values: StoreSettings, group: str, base: str) -> list[dict[str, Any]]:
    _group(group)
    return [{**body, "_links": _setting_links(base, group, sid)}
            for sid, body in _definitions(values).get(group, {}).items()]


def get_setting(values: StoreSettings, group: str, sid: str, base: str) -> dict[str, Any]:
    _group(group)
    body = _definitions(values).get(group, {}).get(sid)
    if body is None:
        raise Reply(404, {"code": "rest_setting_setting_invalid", "message": "Invalid setting.",
                          "data": {"status": 404}})
    return {**body, "group_id": group, "_links": _setting_links(base, group, sid)}
