"""Gemini's Batch API and Files API in the sandbox, persisted across restarts.

A batch is created from inline requests (``batch.inputConfig.requests.requests``, each
``{"request": ..., "metadata": {...}}``) or from an uploaded JSONL file
(``batch.inputConfig.fileName``, lines ``{"key": ..., "request": ...}``). It is
``BATCH_STATE_PENDING``, then ``RUNNING`` after half of ``batch_delay_s``, then
``SUCCEEDED`` once ``batch_delay_s`` has passed since it was created: its answers are made
then, by the same model as live requests, and kept. Results come back the way they went in:
``metadata.output.inlinedResponses.inlinedResponses`` (each ``response`` or ``error``, with
the request's metadata) or ``metadata.output.responsesFile``, a generated JSONL file of
``{"key", "response" | "error"}`` lines to download.

Faults: ``batch_error_rate`` of the items answer a ``google.rpc.Status`` error (code 13,
INTERNAL) instead of a response, drawn from the seed and the item, so a rerun agrees; an
item whose request is invalid answers code 3 (INVALID_ARGUMENT). A batch still unfinished
``batch_expire_s`` after creation is ``BATCH_STATE_EXPIRED`` with no output; a cancelled
one is ``BATCH_STATE_CANCELLED`` with no output.

Time is wall-clock time, and with ``state_path`` every change is written to that JSON file
(atomically) and read back on start, so a batch submitted before a restart finishes after it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from enrich.httpserver import Request, Response
from enrich.sandbox.llm_wire import Ask, BadRequest, Usage

if TYPE_CHECKING:
    from enrich.sandbox.llm import SandboxLLM

#: The create request's size limit for inline requests (the documented 20 MB).
INLINE_MAX_BYTES = 20 * 1024 * 1024
TERMINAL = frozenset({"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED",
                      "BATCH_STATE_EXPIRED"})
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = ("type.googleapis.com/google.ai.generativelanguage.v1main."
               "GenerateContentBatchOutput")
STATE_VERSION = 1

AnswerBody = Callable[[Any, Ask], tuple[dict[str, Any], str, Usage]]


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str, rpc_status: str) -> Response:
    return Response.json({"error": {"code": status, "message": message,
                                    "status": rpc_status}}, status)


class GeminiBatches:
    """Batches, uploads and files, with the answers made by the core's model."""

    def __init__(self, core: SandboxLLM, answer_body: AnswerBody, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.core = core
        self.answer_body = answer_body
        self.clock = clock
        options = core.options
        self.delay_s = options.batch_delay_s
        self.error_rate = options.batch_error_rate
        self.expire_s = options.batch_expire_s
        state = options.state_path
        # Beside the OpenAI/Anthropic batch store's file, never the same one (each rewrites
        # its whole file).
        self.path = state.with_name(state.name + ".gemini") if state is not None else None
        self._lock = threading.RLock()
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self._load()

    # -- persistence ---------------------------------------------------------------------

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
            self.batches = data["gemini"]["batches"]
            self.files = data["gemini"]["files"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"sandbox llm state {self.path} is unreadable ({exc}); move it "
                             "away to start with no batches") from None

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"version": STATE_VERSION, "gemini": {"batches": self.batches,
                                                     "files": self.files}}
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                             encoding="utf-8")
        os.replace(temporary, self.path)

    # -- files ---------------------------------------------------------------------------

    def upload(self, request: Request) -> Response:
        """The resumable protocol the SDK speaks: ``start`` answers an upload URL, then
        ``upload, finalize`` chunks (``X-Goog-Upload-Offset``) complete the file."""
        command = request.headers.get("x-goog-upload-command", "").lower()
        upload_id = request.arg("upload_id")
        with self._lock:
            if upload_id is None:
                if "start" not in command:
                    return _error(400, "Upload protocol: start a resumable upload first.",
                                  "INVALID_ARGUMENT")
                try:
                    meta = (request.json() or {}).get("file") or {}
                except (ValueError, UnicodeDecodeError):
                    meta = {}
                upload_id = uuid.uuid4().hex
                self.uploads[upload_id] = {
                    "data": bytearray(), "meta": meta,
                    "mime": request.headers.get("x-goog-upload-header-content-type")
                    or meta.get("mimeType") or "application/octet-stream"}
                url = (f"{request.scheme}://{request.host}/upload/v1beta/files?"
                       f"upload_id={upload_id}&upload_protocol=resumable")
                return Response(200, b"{}", [("Content-Type", "application/json"),
                                             ("x-goog-upload-url", url),
                                             ("x-goog-upload-status", "active"),
                                             ("x-goog-upload-chunk-granularity", "8388608")])
            upload = self.uploads.get(upload_id)
            if upload is None:
                return _error(404, "Upload not found.", "NOT_FOUND")
            offset = int(request.headers.get("x-goog-upload-offset") or 0)
            if offset != len(upload["data"]):
                return _error(400, f"Upload offset {offset} does not match the "
                              f"{len(upload['data'])} bytes received.", "INVALID_ARGUMENT")
            upload["data"] += request.body
            if "finalize" not in command:
                return Response(200, b"", [("x-goog-upload-status", "active")])
            del self.uploads[upload_id]
            name = str(upload["meta"].get("name") or f"files/{uuid.uuid4().hex[:12]}")
            record = self._new_file(name, bytes(upload["data"]), upload["mime"],
                                    upload["meta"].get("displayName"), "UPLOADED")
            self._save()
        return Response.json({"file": self._file_json(request, record)}, 200,
                             [("x-goog-upload-status", "final")])

    def _new_file(self, name: str, data: bytes, mime: str, display_name: str | None,
                  source: str) -> dict[str, Any]:
        now = self.clock()
        record = {"name": name, "mime": mime, "display_name": display_name, "source": source,
                  "created": now, "data": base64.b64encode(data).decode("ascii"),
                  "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode("ascii"),
                  "size": len(data)}
        self.files[name] = record
        return record

    def _file_json(self, request: Request, record: dict[str, Any]) -> dict[str, Any]:
        base = f"{request.scheme}://{request.host}/v1beta/{record['name']}"
        info: dict[str, Any] = {
            "name": record["name"], "mimeType": record["mime"],
            "sizeBytes": str(record["size"]), "createTime": _rfc3339(record["created"]),
            "updateTime": _rfc3339(record["created"]),
            "expirationTime": _rfc3339(record["created"] + 48 * 3600),
            "sha256Hash": record["sha256"], "uri": base, "state": "ACTIVE",
            "source": record["source"]}
        if record.get("display_name"):
            info["displayName"] = record["display_name"]
        if record["source"] == "GENERATED":
            info["downloadUri"] = base + ":download?alt=media"
        return info

    def file_info(self, request: Request, file_id: str) -> Response:
        with self._lock:
            record = self.files.get(f"files/{file_id}")
            if record is None:
                return _error(403, f"You do not have permission to access the File {file_id} "
                              "or it may not exist.", "PERMISSION_DENIED")
            return Response.json(self._file_json(request, record))

    def download(self, file_id: str) -> Response:
        with self._lock:
            record = self.files.get(f"files/{file_id}")
            if record is None:
                return _error(404, f"File files/{file_id} not found.", "NOT_FOUND")
            data = base64.b64decode(record["data"])
        return Response(200, data, [("Content-Type", record["mime"])])

    def delete_file(self, file_id: str) -> Response:
        with self._lock:
            if self.files.pop(f"files/{file_id}", None) is None:
                return _error(404, f"File files/{file_id} not found.", "NOT_FOUND")
            self._save()
        return Response.json({})

    # -- batches -------------------------------------------------------------------------

    def create(self, request: Request, model: str) -> Response:
        if len(request.body) > INLINE_MAX_BYTES:
            return _error(400, f"Request payload size exceeds the limit: {INLINE_MAX_BYTES} "
                          "bytes. Upload the requests as a JSONL file instead.",
                          "INVALID_ARGUMENT")
        try:
            body = request.json()
            batch = body["batch"]
            source = batch.get("inputConfig") or {}
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            return _error(400, "* BatchGenerateContentRequest.batch: batch is required.\n",
                          "INVALID_ARGUMENT")
        inline = (source.get("requests") or {}).get("requests")
        file_name = source.get("fileName")
        if (inline is None) == (file_name is None):
            return _error(400, "* BatchGenerateContentRequest.batch.input_config: exactly one "
                          "of requests and file_name must be set.\n", "INVALID_ARGUMENT")
        with self._lock:
            if file_name is not None:
                record = self.files.get(file_name)
                if record is None:
                    return _error(404, f"File {file_name} not found.", "NOT_FOUND")
                items = []
                for number, line in enumerate(base64.b64decode(record["data"]).decode(
                        "utf-8", "replace").splitlines()):
                    if line.strip():
                        try:
                            row = json.loads(line)
                        except ValueError:
                            row = {"key": f"line-{number + 1}", "request": None}
                        items.append({"key": row.get("key"), "request": row.get("request")})
            else:
                if not isinstance(inline, list) or not inline:
                    return _error(400, "* BatchGenerateContentRequest.batch.input_config."
                                  "requests: requests must not be empty.\n", "INVALID_ARGUMENT")
                items = [{"metadata": r.get("metadata"), "request": r.get("request")}
                         for r in inline if isinstance(r, dict)]
            batch_id = uuid.uuid4().hex[:16]
            now = self.clock()
            self.batches[batch_id] = {
                "id": batch_id, "model": f"models/{model}",
                "display_name": str(batch.get("displayName") or ""), "created": now,
                "updated": now, "ended": None, "state": "BATCH_STATE_PENDING",
                "source": "file" if file_name else "inline", "items": items, "output": None,
                "stats": None}
            self._save()
            return Response.json(self._operation(self.batches[batch_id]))

    def get(self, batch_id: str) -> Response:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return _error(404, f"Batch batches/{batch_id} not found.", "NOT_FOUND")
            self._advance(batch)
            return Response.json(self._operation(batch))

    def list(self, request: Request) -> Response:
        size = max(1, min(1000, int(request.arg("pageSize") or 50)))
        start = int(request.arg("pageToken") or 0)
        with self._lock:
            ordered = sorted(self.batches.values(), key=lambda b: b["created"], reverse=True)
            page = ordered[start:start + size]
            for batch in page:
                self._advance(batch)
            body: dict[str, Any] = {"operations": [self._operation(b) for b in page]}
            if start + size < len(ordered):
                body["nextPageToken"] = str(start + size)
            return Response.json(body)

    def cancel(self, batch_id: str) -> Response:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return _error(404, f"Batch batches/{batch_id} not found.", "NOT_FOUND")
            self._advance(batch)
            if batch["state"] not in TERMINAL:
                self._end(batch, "BATCH_STATE_CANCELLED")
                self._save()
            return Response.json({})

    def delete(self, batch_id: str) -> Response:
        with self._lock:
            if self.batches.pop(batch_id, None) is None:
                return _error(404, f"Batch batches/{batch_id} not found.", "NOT_FOUND")
            self._save()
            return Response.json({})

    # -- processing ----------------------------------------------------------------------

    def _end(self, batch: dict[str, Any], state: str) -> None:
        now = self.clock()
        batch["state"], batch["ended"], batch["updated"] = state, now, now

    def _advance(self, batch: dict[str, Any]) -> None:
        """Move a batch along by the time that has passed (states only ever move forward)."""
        if batch["state"] in TERMINAL:
            return
        elapsed = self.clock() - batch["created"]
        if self.expire_s is not None and elapsed >= self.expire_s and (
                elapsed < self.delay_s or self.expire_s < self.delay_s):
            self._end(batch, "BATCH_STATE_EXPIRED")
            self._save()
        elif elapsed >= self.delay_s:
            self._complete(batch)
            self._save()
        elif elapsed >= self.delay_s / 2 and batch["state"] == "BATCH_STATE_PENDING":
            batch["state"], batch["updated"] = "BATCH_STATE_RUNNING", self.clock()
            self._save()

    def _complete(self, batch: dict[str, Any]) -> None:
        from enrich.sandbox.llm_gemini import parse
        model = batch["model"].removeprefix("models/")
        outputs: list[dict[str, Any]] = []
        ok = failed = 0
        for index, item in enumerate(batch["items"]):
            body = json.dumps(item.get("request"), sort_keys=True).encode("utf-8")
            call = self.core_call(Request("POST", f"/batch/{batch['id']}/{index}", "", {},
                                          body))
            result: dict[str, Any]
            try:
                if not isinstance(item.get("request"), dict):
                    raise BadRequest("* GenerateContentRequest: request is not an object.\n")
                ask = parse(model, item["request"])
            except BadRequest as exc:
                result = {"error": {"code": 3, "message": exc.message,
                                    "status": "INVALID_ARGUMENT"}}
                self.core._record(call, "bad_request")
            else:
                if call.draw < self.error_rate:
                    result = {"error": {"code": 13, "message": "Internal error encountered.",
                                        "status": "INTERNAL"}}
                    self.core._record(call, "server_error")
                else:
                    response, outcome, _ = self.answer_body(call, ask)
                    result = {"response": response}
                    self.core._record(call, outcome)
            failed += "error" in result
            ok += "response" in result
            if batch["source"] == "file":
                outputs.append({"key": item.get("key"), **result})
            else:
                outputs.append({**result, **({"metadata": item["metadata"]}
                                             if item.get("metadata") else {})})
        if batch["source"] == "file":
            data = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in outputs)
            record = self._new_file(f"files/batch-{batch['id']}", data.encode("utf-8"),
                                    "application/jsonl", None, "GENERATED")
            batch["output"] = {"responsesFile": record["name"]}
        else:
            batch["output"] = {"inlinedResponses": {"inlinedResponses": outputs}}
        batch["stats"] = {"requestCount": str(ok + failed), "successfulRequestCount": str(ok),
                          "failedRequestCount": str(failed), "pendingRequestCount": "0"}
        batch["items"] = []  # answered: the requests are not needed any more
        self._end(batch, "BATCH_STATE_SUCCEEDED")

    def core_call(self, request: Request) -> Any:
        """A call of the core for one batch item: its draws come from the seed and the
        request, so the same batch answers the same way after a restart."""
        from enrich.sandbox.llm import _Call
        call = _Call("gemini-batch", request)
        self.core._draw(call)
        return call

    def _operation(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch as the API returns it: a long-running Operation named ``batches/...``
        whose metadata is the GenerateContentBatch."""
        name = f"batches/{batch['id']}"
        count = len(batch["items"]) if batch["stats"] is None else None
        meta: dict[str, Any] = {
            "@type": BATCH_TYPE, "model": batch["model"], "displayName": batch["display_name"],
            "name": name, "createTime": _rfc3339(batch["created"]),
            "updateTime": _rfc3339(batch["updated"]), "state": batch["state"],
            "batchStats": batch["stats"] or {"requestCount": str(count),
                                             "pendingRequestCount": str(count)}}
        if batch["ended"] is not None:
            meta["endTime"] = _rfc3339(batch["ended"])
        operation: dict[str, Any] = {"name": name, "metadata": meta}
        if batch["state"] in TERMINAL:
            operation["done"] = True
        if batch["output"] is not None:
            meta["output"] = batch["output"]
            operation["response"] = {"@type": OUTPUT_TYPE, **batch["output"]}
        return operation
