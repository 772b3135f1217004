"""The write side of the sandbox store: updates, creates, deletes, batches, the state file.

Mixed into ``SandboxStore`` (which holds the data and the read side). Writes follow what
the recorded store does, quirks included: schema type checks on single writes and none in
batches, ``meta_data`` merged by key, a body ``id`` overriding the URL id, an empty name
refused when there is no other content, ``date_modified`` bumped by every write, and the
state file rewritten atomically after each write request.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enrich.httpserver import Request
from enrich.sandbox.store_kses import stored_copy
from enrich.sandbox.store_products import (
    INTERNAL_META_KEYS,
    PRODUCT_SCHEMA,
    UNCATEGORIZED,
    VARIATION_SCHEMA,
    FatalBatchItem,
    coerce_batch_item,
    compute_price,
    fmt_time,
    format_decimal,
    merge_meta,
    parse_naive,
    product_from_record,
    sale_timestamp,
    slugify,
    to_bool,
    to_int,
    validate_fields,
)
from enrich.sandbox.store_query import invalid_params_body
from enrich.sandbox.store_replies import (
    FATAL_BODY,
    VARIATION_VIA_PRODUCTS,
    Reply,
    error_reply,
    invalid_id,
)

if TYPE_CHECKING:
    from enrich.sandbox.store import StoreOptions
    from enrich.sandbox.store_products import Product, SiteTime


class StoreWrites:
    """Write handlers of ``SandboxStore``; the attributes below are set by it."""

    options: StoreOptions
    base_url: str
    _site: SiteTime
    _products: dict[int, Product]
    _children: dict[int, list[int]]
    _sku: dict[str, int]
    _categories: dict[int, dict[str, Any]]
    _attachments: dict[int, dict[str, Any]]
    _state_json: dict[int, str]
    _next_id: int
    _version: int
    _struct_version: int
    writes: Counter[int]

    # provided by SandboxStore
    def _render(self, product: dict[str, Any], context: str, base: str, *,
                copy_values: bool = False, fields: list[str] | None = None
                ) -> dict[str, Any]:
        raise NotImplementedError

    def _render_variation(self, variation: dict[str, Any], base: str) -> dict[str, Any]:
        raise NotImplementedError

    def _variation_of(self, parent: int, vid: int, status: int) -> dict[str, Any]:
        raise NotImplementedError

    def _meta_id(self) -> int:
        raise NotImplementedError

    def _now(self) -> int:
        raise NotImplementedError

    def _attach(self, images: list[Any], when: int) -> list[dict[str, Any]]:
        """Images as WooCommerce returns them: attachments with id, dates, src, name, alt.

        An image given by a known attachment id is that attachment (a new name or alt
        updates it); one given by src becomes a new attachment, as a sideload would.
        """
        out = []
        for image in images:
            if not isinstance(image, dict):
                continue
            aid = image.get("id")
            known = self._attachments.get(aid) if isinstance(aid, int) else None
            if known is None:
                aid = aid if isinstance(aid, int) and aid > 0 and aid not in self._products \
                    else self._next_id
                self._next_id = max(self._next_id, aid + 1)
                src = str(image.get("src") or "")
                stem = src.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
                stamp_local = fmt_time(self._site.local(when))
                stamp_gmt = fmt_time(when)
                known = {"id": aid, "date_created": stamp_local, "date_created_gmt": stamp_gmt,
                         "date_modified": stamp_local, "date_modified_gmt": stamp_gmt,
                         "src": src, "name": stem, "alt": ""}
                known.update({k: v for k, v in image.items()  # e.g. from a state file
                              if k in known and k != "id" and isinstance(v, str)})
            known = {**known, **{k: image[k] for k in ("name", "alt") if
                                 isinstance(image.get(k), str)}}
            self._attachments[known["id"]] = known
            out.append(dict(known))
        return out

    def _touch(self, pid: int | None = None, *, structural: bool = False) -> None:
        self._version += 1
        if structural:
            self._struct_version += 1
        if pid is not None:
            self._state_json.pop(pid, None)

    def _persist(self) -> None:
        path = self.options.state_path
        if path is None:
            return
        path = Path(path)
        parts = []
        for pid, product in self._products.items():
            cached = self._state_json.get(pid)
            if cached is None:
                cached = json.dumps(self._render(product, "edit", self.base_url))
                self._state_json[pid] = cached
            parts.append(cached)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("[\n" + ",\n".join(parts) + "\n]\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _check_schema(self, body: dict[str, Any], variation: bool) -> None:
        errors = validate_fields(body, VARIATION_SCHEMA if variation else PRODUCT_SCHEMA)
        if errors:
            raise Reply(400, invalid_params_body(errors))

    def _check_sku(self, sku: Any, pid: int | None) -> Reply | None:
        if not isinstance(sku, str) or sku == "":
            return None
        owner = self._sku.get(sku)
        if owner is None or owner == pid:
            return None
        suggestion, n = f"{sku}-1", 1
        while suggestion in self._sku:
            n += 1
            suggestion = f"{sku}-{n}"
        return error_reply(400, "product_invalid_sku", "Invalid or duplicated SKU.",
                      resource_id=owner, unique_sku=suggestion)

    def _apply(self, p: dict[str, Any], fields: dict[str, Any], *, batch: bool) -> None:
        """Write ``fields`` into product ``p`` as WooCommerce's REST controller would."""
        if "meta_data" in fields and isinstance(fields["meta_data"], list):
            p["meta_data"], internal = merge_meta(p["meta_data"], fields["meta_data"],
                                                  self._meta_id)
            if "_sku" in internal and "sku" not in fields:
                fields = {**fields, "sku": internal["_sku"]}
        if "sku" in fields:
            sku = fields["sku"] if isinstance(fields["sku"], str) else ""
            if p.get("sku") and self._sku.get(p["sku"]) == p["id"]:
                del self._sku[p["sku"]]
            p["sku"] = sku
            if sku:
                self._sku[sku] = p["id"]
        for key in ("description", "short_description"):
            if key in fields:
                value = fields[key]
                p[key] = stored_copy(value, variation=p.get("type") == "variation") \
                    if isinstance(value, str) else ""
        refuse_name = False
        if "name" in fields:
            name = fields["name"] if isinstance(fields["name"], str) else ""
            if name.strip() == "":
                name = ""
                if not p.get("description") and not p.get("short_description"):
                    refuse_name = True  # WordPress refuses an empty title+content+excerpt
            if not refuse_name:
                p["name"] = name
        for key in ("slug", "tax_class", "shipping_class", "purchase_note", "external_url",
                    "button_text", "weight", "post_password", "global_unique_id"):
            if key in fields:
                value = fields[key]
                p[key] = value if isinstance(value, str) else ""
        for key in ("type", "status", "catalog_visibility", "tax_status", "backorders",
                    "stock_status"):
            if key in fields and isinstance(fields[key], str):
                p[key] = fields[key]
        for key in ("featured", "virtual", "downloadable", "manage_stock",
                    "sold_individually", "reviews_allowed"):
            if key in fields and fields[key] is not None:
                p[key] = to_bool(fields[key])
        for key in ("download_limit", "download_expiry", "menu_order", "parent_id"):
            if key in fields:
                p[key] = to_int(fields[key], 0)
        for key in ("stock_quantity", "low_stock_amount"):
            if key in fields:
                p[key] = to_int(fields[key], None)
        for key in ("regular_price", "sale_price"):
            if key in fields:
                p[key] = format_decimal(fields[key])
        for which in ("from", "to"):
            for suffix, gmt in (("", False), ("_gmt", True)):
                key = f"date_on_sale_{which}{suffix}"
                if key in fields:
                    p[f"date_on_sale_{which}"] = sale_timestamp(fields[key], self._site, gmt)
        for key in ("date_created", "date_created_gmt"):
            if key in fields and isinstance(fields[key], str):
                ts = parse_naive(fields[key])
                if ts is not None:
                    p["_created"] = ts
        if isinstance(fields.get("dimensions"), dict):
            dims = dict(p.get("dimensions") or {})
            for axis in ("length", "width", "height"):
                if axis in fields["dimensions"]:
                    dims[axis] = str(fields["dimensions"][axis] or "")
            p["dimensions"] = dims
        for key in ("upsell_ids", "cross_sell_ids", "grouped_products"):
            if isinstance(fields.get(key), list):
                p[key] = [to_int(x) for x in fields[key]]
        if isinstance(fields.get("categories"), list):
            cats = [dict(self._categories[c["id"]]) for c in fields["categories"]
                    if isinstance(c, dict) and c.get("id") in self._categories]
            p["categories"] = cats or [dict(UNCATEGORIZED)]
        for key in ("tags", "brands", "attributes", "default_attributes", "downloads"):
            if isinstance(fields.get(key), list):
                p[key] = [dict(x) for x in fields[key] if isinstance(x, dict)]
        if isinstance(fields.get("images"), list):
            # An image sent by id is the existing attachment (src, name kept); a new alt
            # or name updates it, as WooCommerce does.
            known = {img.get("id"): img for img in p.get("images") or []}
            merged = [{**known.get(x.get("id"), {}), **x} for x in fields["images"]
                      if isinstance(x, dict)]
            p["images"] = self._attach(merged, self._now())
        if isinstance(fields.get("image"), dict) or ("image" in fields and
                                                     fields["image"] is None):
            p["image"] = fields["image"]
        if p.get("manage_stock") and p.get("stock_quantity") is not None and (
                "stock_quantity" in fields or "manage_stock" in fields):
            if p["stock_quantity"] > 0:
                p["stock_status"] = "instock"
            else:
                p["stock_status"] = "onbackorder" if p.get("backorders") != "no" else \
                    "outofstock"
        compute_price(p, self._now())
        if not refuse_name or fields.keys() - {"name"}:
            p["_modified"] = self._now()
        self._touch(p["id"], structural=bool(fields.keys() & _STRUCTURAL_FIELDS))
        if p.get("type") == "variation" and p.get("parent_id") in self._products:
            parent = self._products[p["parent_id"]]
            parent["_modified"] = p["_modified"]
            self._touch(parent["id"])

    def _target_id(self, body: dict[str, Any], url_id: int) -> Any:
        return body.get("id", url_id)

    def _update(self, body: dict[str, Any], url_id: int, base: str) -> tuple[int, Any]:
        pid = self._target_id(body, url_id)
        product = self._products.get(pid) if isinstance(pid, int) else None
        if product is None:
            raise invalid_id(400)
        if product.get("type") == "variation":
            raise error_reply(404, "woocommerce_rest_invalid_product_id", VARIATION_VIA_PRODUCTS)
        self._check_schema(body, variation=False)
        sku_error = self._check_sku(body.get("sku"), pid) if "sku" in body else None
        if sku_error is not None:
            raise sku_error
        self._apply(product, _writable(body), batch=False)
        self.writes[product["id"]] += 1
        self._persist()
        return 200, self._render(product, "edit", base)

    def _create(self, body: dict[str, Any], base: str, *, validate: bool = True
                ) -> tuple[int, Any]:
        if validate:
            self._check_schema(body, variation=False)
        if "sku" in body and (sku_error := self._check_sku(body.get("sku"), None)):
            raise sku_error
        pid = self._next_id
        self._next_id += 1
        now = self._now()
        product = product_from_record({}, pid, now, self._site)
        product["slug"] = ""
        self._products[pid] = product
        fields = _writable(body)
        if not isinstance(fields.get("name"), str) or fields.get("name", "").strip() == "":
            fields["name"] = "Product"
        self._apply(product, fields, batch=not validate)
        self._touch(pid, structural=True)
        if not product["slug"]:
            product["slug"] = self._unique_slug(slugify(product["name"]) or str(pid), pid)
        if not product["categories"]:
            product["categories"] = [dict(UNCATEGORIZED)]
        product["_created"] = product["_created"] if "date_created" in body or \
            "date_created_gmt" in body else now
        self._persist()
        return 201, self._render(product, "edit", base)

    def _unique_slug(self, slug: str, pid: int) -> str:
        taken = {p.get("slug") for q, p in self._products.items() if q != pid} \
            if len(self._products) < 5000 else set()
        candidate, n = slug, 2
        while candidate in taken:
            candidate = f"{slug}-{n}"
            n += 1
        return candidate

    def _delete(self, request: Request, pid: int, base: str) -> tuple[int, Any]:
        product = self._products.get(pid)
        if product is None:
            raise invalid_id(404)
        if product.get("type") == "variation":
            raise error_reply(404, "woocommerce_rest_invalid_product_id", VARIATION_VIA_PRODUCTS)
        force = (request.arg("force") or "").lower() in ("true", "1")
        body = self._render(product, "edit", base)
        if force:
            self._remove(pid)
        else:
            product["status"] = "trash"
            product["_modified"] = self._now()
            self._touch(pid, structural=True)
            body = self._render(product, "edit", base)
        self._persist()
        return 200, body

    def _remove(self, pid: int) -> None:
        product = self._products.pop(pid)
        self._state_json.pop(pid, None)
        if product.get("sku") and self._sku.get(product["sku"]) == pid:
            del self._sku[product["sku"]]
        for child in self._children.pop(pid, []):
            self._remove(child)
        parent = product.get("parent_id")
        if product.get("type") == "variation" and parent in self._children:
            self._children[parent] = [c for c in self._children[parent] if c != pid]
        self._touch(structural=True)

    def _batch(self, body: dict[str, Any], base: str, parent: int | None
               ) -> tuple[int, Any]:
        ops = {op: body[op] for op in ("create", "update", "delete") if body.get(op)}
        size = sum(len(v) if isinstance(v, list | dict) else 1 for v in ops.values())
        if size > self.options.batch_limit:
            raise error_reply(413, "woocommerce_rest_request_entity_too_large",
                         f"Unable to accept more than {self.options.batch_limit} items for "
                         "this request.")
        if parent is not None and self._products.get(parent, {}).get("type") != "variable":
            parent_ok = parent in self._products
            if not parent_ok:
                raise error_reply(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        result: dict[str, list[Any]] = {}
        try:
            for op, raw_items in ops.items():
                items = list(raw_items.values()) if isinstance(raw_items, dict) else (
                    raw_items if isinstance(raw_items, list) else [raw_items])
                out = result.setdefault(op, [])
                for item in items:
                    out.append(self._batch_item(op, item, base, parent))
        except FatalBatchItem:
            self._persist()
            raise Reply(500, FATAL_BODY) from None
        self._persist()
        return 200, result if result else []

    def _batch_item(self, op: str, item: Any, base: str, parent: int | None) -> Any:
        variation = parent is not None
        try:
            if op == "delete":
                pid = item.get("id") if isinstance(item, dict) else item
                target = self._products.get(pid) if isinstance(pid, int) else None
                if variation:
                    target = self._variation_of(parent, pid, 404) if isinstance(pid, int) \
                        else None
                if target is None:
                    raise invalid_id(404)
                if not variation and target.get("type") == "variation":
                    raise error_reply(404, "woocommerce_rest_invalid_product_id",
                                 VARIATION_VIA_PRODUCTS)
                rendered = (self._render_variation(target, base) if variation
                            else self._render(target, "edit", base))
                self._remove(target["id"])
                return rendered
            fields = coerce_batch_item(item, variation) if isinstance(item, dict) else {}
            if op == "create":
                if variation:
                    assert parent is not None
                    return self._create_variation(fields, parent, base, validate=False)[1]
                return self._create(fields, base, validate=False)[1]
            raw_id = item.get("id") if isinstance(item, dict) else None
            if variation:
                assert parent is not None
                if not isinstance(raw_id, int):
                    raise error_reply(400, "woocommerce_rest_product_variation_invalid_id",
                                 "Invalid ID.")
                target = self._variation_of(parent, raw_id, 400)
            else:
                target = self._products.get(raw_id) if isinstance(raw_id, int) else None
                if target is None:
                    raise invalid_id(400)
                if target.get("type") == "variation":
                    raise error_reply(404, "woocommerce_rest_invalid_product_id",
                                 VARIATION_VIA_PRODUCTS)
            if "sku" in fields and (sku_error := self._check_sku(fields["sku"], target["id"])):
                raise sku_error
            self._apply(target, _writable(fields), batch=True)
            self.writes[target["id"]] += 1
            return (self._render_variation(target, base) if variation
                    else self._render(target, "edit", base))
        except Reply as reply:
            raw = item.get("id") if isinstance(item, dict) else (
                item if op == "delete" else None)
            return {"id": raw, "error": reply.body}

    def _create_variation(self, body: dict[str, Any], parent: int, base: str, *,
                          validate: bool = True) -> tuple[int, Any]:
        if parent not in self._products or self._products[parent].get("type") == "variation":
            raise error_reply(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        if validate:
            self._check_schema(body, variation=True)
        if "sku" in body and (sku_error := self._check_sku(body.get("sku"), None)):
            raise sku_error
        pid = self._next_id
        self._next_id += 1
        product = product_from_record({"type": "variation", "parent_id": parent}, pid,
                                      self._now(), self._site)
        product["categories"] = []
        product["name"] = self._products[parent].get("name", "")
        self._products[pid] = product
        self._children.setdefault(parent, []).append(pid)
        self._apply(product, _writable(body), batch=not validate)
        self._touch(pid, structural=True)
        self._persist()
        return 201, self._render_variation(product, base)

    def _update_variation(self, body: dict[str, Any], parent: int, vid: int, base: str
                          ) -> tuple[int, Any]:
        target_id = self._target_id(body, vid)
        variation = self._variation_of(parent, target_id if isinstance(target_id, int) else -1,
                                       400)
        self._check_schema(body, variation=True)
        if "sku" in body and (sku_error := self._check_sku(body.get("sku"), variation["id"])):
            raise sku_error
        self._apply(variation, _writable(body), batch=False)
        self._persist()
        return 200, self._render_variation(variation, base)

    def _delete_variation(self, request: Request, parent: int, vid: int, base: str
                          ) -> tuple[int, Any]:
        variation = self._variation_of(parent, vid, 404)
        body = self._render_variation(variation, base)
        self._remove(vid)
        self._persist()
        return 200, body


_STRUCTURAL_FIELDS = frozenset({"status", "categories", "type", "date_created",
                                "date_created_gmt", "parent_id"})


def _writable(body: dict[str, Any]) -> dict[str, Any]:
    """The fields a write may change: ids, read-only dates and derived fields are ignored."""
    return {k: v for k, v in body.items()
            if k not in ("id", "date_modified", "date_modified_gmt", "permalink", "price",
                         "on_sale", "purchasable", "total_sales", "average_rating",
                         "rating_count", "related_ids", "price_html", "variations",
                         "has_options", "_links", "backorders_allowed", "backordered",
                         "shipping_required", "shipping_taxable", "shipping_class_id")
            and k not in INTERNAL_META_KEYS}
