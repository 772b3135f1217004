"""The sandbox's batch services: OpenAI Files + Batches, and Anthropic Message Batches.

Routes (served by ``SandboxLLM``, same keys and auth as the live routes)::

    POST /v1/files                          upload (multipart, purpose=batch)
    GET  /v1/files/{id}  /v1/files/{id}/content
    POST /v1/batches     GET /v1/batches    GET /v1/batches/{id}   POST /v1/batches/{id}/cancel
    POST /v1/messages/batches               GET /v1/messages/batches
    GET  /v1/messages/batches/{id}          POST /v1/messages/batches/{id}/cancel
    GET  /v1/messages/batches/{id}/results  (JSONL)

A batch ends ``batch_delay_s`` after it was created (0: at the first look). It is processed
then, line by line, by ``answer_line`` (``SandboxLLM.answer_body``: the code that answers live
requests). Each line draws, from the seed and its custom id: expired (``batch_expire_rate``)
or errored with a 500 (``batch_error_rate``); a batch canceled before its end answers every
line ``canceled``. With ``state_path`` every change is written to that JSON file (and read
back at start), so batches outlive a restart of the sandbox, as they outlive a client's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

from enrich.httpserver import Request, Response

AnswerLine = Callable[[str, Any], tuple[int, dict[str, Any]]]

_OPENAI_BATCH = re.compile(r"^/v1/batches/([^/]+)(/cancel)?$")
_OPENAI_FILE = re.compile(r"^/v1/files/([^/]+)(/content)?$")
_ANTHROPIC_BATCH = re.compile(r"^/v1/messages/batches/([^/]+)(/cancel|/results)?$")


def handles(path: str) -> bool:
    return (path in ("/v1/files", "/v1/batches", "/v1/messages/batches")
            or bool(_OPENAI_BATCH.match(path) or _OPENAI_FILE.match(path)
                    or _ANTHROPIC_BATCH.match(path)))


def _rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _openai_error(status: int, message: str, param: str | None = None) -> Response:
    return Response.json({"error": {"message": message, "type": "invalid_request_error",
                                    "param": param, "code": None}}, status)


def _anthropic_error(status: int, message: str, kind: str = "invalid_request_error",
                     ) -> Response:
    return Response.json({"type": "error", "error": {"type": kind, "message": message}},
                         status)


class BatchStore:
    """Files and batches of both services, processed lazily when a batch is looked at."""

    def __init__(self, answer_line: AnswerLine, *, delay_s: float = 0.0,
                 error_rate: float = 0.0, expire_rate: float = 0.0, seed: int = 0,
                 state_path: Path | None = None, clock: Callable[[], float] = time.time,
                 ) -> None:
        self.answer_line = answer_line
        self.delay_s = delay_s
        self.error_rate = error_rate
        self.expire_rate = expire_rate
        self.seed = seed
        self.state_path = state_path
        self.clock = clock
        self._lock = threading.RLock()
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        if state_path is not None and state_path.exists():
            try:
                data = json.loads(state_path.read_text(encoding="utf-8"))
                self.files, self.batches = data["files"], data["batches"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"sandbox llm state {state_path} is unreadable ({exc}); move "
                                 "it away to start with no batches") from None

    # -- persistence ------------------------------------------------------------------------

    def _save(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"files": self.files, "batches": self.batches}),
                       encoding="utf-8")
        os.replace(tmp, self.state_path)

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self._lock:
            path, method = request.path, request.method
            if path.startswith("/v1/messages/batches"):
                return self._anthropic(request, path, method)
            if path == "/v1/files" and method == "POST":
                return self._upload(request)
            match = _OPENAI_FILE.match(path)
            if match and method == "GET":
                return self._file(match[1], bool(match[2]))
            if path == "/v1/batches":
                return self._openai_create(request) if method == "POST" else \
                    self._openai_list(request)
            match = _OPENAI_BATCH.match(path)
            if match:
                batch = self.batches.get(match[1])
                if batch is None or batch["route"] != "openai":
                    return _openai_error(404, f"No batch found with id '{match[1]}'.")
                if match[2] and method == "POST":
                    self._cancel(batch)
                return Response.json(self._openai_view(batch))
            return _openai_error(404, f"Unknown request URL: {method} {path}.")

    # -- processing -------------------------------------------------------------------------

    def _draw(self, custom_id: str) -> float:
        digest = hashlib.sha256(f"{self.seed}:batch:{custom_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _advance(self, batch: dict[str, Any]) -> None:
        """Process the batch if its time has come (or it was canceled): once."""
        if batch["ended_at"] is not None:
            return
        now = self.clock()
        canceled = batch["cancel_requested_at"] is not None
        if not canceled and now < batch["created_at"] + self.delay_s:
            return
        results: list[dict[str, Any]] = []
        for custom_id, body in self._lines(batch):
            if canceled:
                results.append({"custom_id": custom_id, "type": "canceled"})
                continue
            draw = self._draw(custom_id)
            if draw < self.expire_rate:
                results.append({"custom_id": custom_id, "type": "expired"})
            elif draw < self.expire_rate + self.error_rate:
                results.append({"custom_id": custom_id, "type": "errored", "status": 500})
            else:
                status, answer = self.answer_line(batch["route"], body)
                kind = "succeeded" if status == 200 else "errored"
                results.append({"custom_id": custom_id, "type": kind, "status": status,
                                "body": answer})
        batch["results"] = results
        batch["ended_at"] = now
        if batch["route"] == "openai":
            self._openai_files(batch, results)
        self._save()

    def _lines(self, batch: dict[str, Any]) -> list[tuple[str, Any]]:
        if batch["route"] == "anthropic":
            return [(r["custom_id"], r["params"]) for r in batch["requests"]]
        content = self.files[batch["input_file_id"]]["content"]
        out = []
        for text in content.splitlines():
            if text.strip():
                line = json.loads(text)
                out.append((line["custom_id"], line["body"]))
        return out

    def _cancel(self, batch: dict[str, Any]) -> None:
        if batch["ended_at"] is None and batch["cancel_requested_at"] is None:
            batch["cancel_requested_at"] = self.clock()
            self._save()

    # -- OpenAI -----------------------------------------------------------------------------

    def _upload(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        if "multipart/form-data" not in ctype:
            return _openai_error(400, "Expected multipart/form-data.")
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + request.body)
        fields: dict[str, Any] = {}
        filename = "upload.jsonl"
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():
                filename = part.get_filename()
            fields[str(name)] = payload
        if fields.get("purpose", b"").decode() != "batch":
            return _openai_error(400, "This sandbox takes files with purpose 'batch' only.",
                                 "purpose")
        content = fields.get("file")
        if content is None:
            return _openai_error(400, "Missing required parameter: 'file'.", "file")
        text = content.decode("utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                return _openai_error(400, f"Line {number} of the file is not valid JSON.")
            if not isinstance(data, dict) or not data.get("custom_id") or \
                    data.get("url") != "/v1/chat/completions":
                return _openai_error(400, f"Line {number}: each line needs custom_id, method "
                                     "POST and url /v1/chat/completions.")
        file_id = f"file-{secrets.token_hex(12)}"
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content),
                               "created_at": int(self.clock()), "filename": filename,
                               "purpose": "batch", "status": "processed", "content": text}
        self._save()
        return Response.json(self._file_view(self.files[file_id]))

    @staticmethod
    def _file_view(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k != "content"}

    def _file(self, file_id: str, content: bool) -> Response:
        record = self.files.get(file_id)
        if record is None:
            return _openai_error(404, f"No such File object: {file_id}", "id")
        if content:
            return Response(200, record["content"].encode("utf-8"),
                            [("Content-Type", "application/octet-stream")])
        return Response.json(self._file_view(record))

    def _openai_create(self, request: Request) -> Response:
        body = request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return _openai_error(400, f"Invalid 'input_file_id': '{file_id}'.",
                                 "input_file_id")
        if body.get("endpoint") != "/v1/chat/completions" or \
                body.get("completion_window") != "24h":
            return _openai_error(400, "This sandbox batches /v1/chat/completions with "
                                 "completion_window 24h only.")
        lines = self._lines({"route": "openai", "input_file_id": file_id})
        ids = [cid for cid, _ in lines]
        if len(set(ids)) != len(ids):
            return _openai_error(400, "The input file has duplicate custom_id values.")
        models = {b.get("model") for _, b in lines}
        if len(models) > 1:
            return _openai_error(400, "A batch's requests must all use the same model.")
        batch_id = f"batch_{secrets.token_hex(12)}"
        self.batches[batch_id] = {
            "id": batch_id, "route": "openai", "input_file_id": file_id,
            "metadata": body.get("metadata"), "created_at": self.clock(), "total": len(lines),
            "cancel_requested_at": None, "ended_at": None, "results": None,
            "output_file_id": None, "error_file_id": None}
        self._save()
        return Response.json(self._openai_view(self.batches[batch_id], advance=False))

    def _openai_files(self, batch: dict[str, Any], results: list[dict[str, Any]]) -> None:
        out, err = [], []
        for r in results:
            line: dict[str, Any] = {"id": f"batch_req_{secrets.token_hex(8)}",
                                    "custom_id": r["custom_id"], "response": None,
                                    "error": None}
            if r["type"] == "succeeded":
                line["response"] = {"status_code": 200, "request_id": "req_sandbox",
                                    "body": r["body"]}
                out.append(line)
                continue
            if r["type"] == "errored":
                body = r.get("body") or {"error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error", "param": None, "code": None}}
                line["response"] = {"status_code": r["status"], "request_id": "req_sandbox",
                                    "body": body}
            else:
                code = "batch_expired" if r["type"] == "expired" else "batch_cancelled"
                line["error"] = {"code": code, "message": f"This request could not be "
                                 f"executed before the batch was {r['type']}."}
            err.append(line)
        for kind, lines in (("output_file_id", out), ("error_file_id", err)):
            if lines:
                file_id = f"file-{secrets.token_hex(12)}"
                text = "".join(json.dumps(line) + "\n" for line in lines)
                self.files[file_id] = {"id": file_id, "object": "file",
                                       "bytes": len(text.encode()),
                                       "created_at": int(self.clock()),
                                       "filename": f"{batch['id']}_{kind[:-8]}.jsonl",
                                       "purpose": "batch_output", "status": "processed",
                                       "content": text}
                batch[kind] = file_id

    def _openai_view(self, batch: dict[str, Any], *, advance: bool = True) -> dict[str, Any]:
        """The Batch object; a look at it processes it when its time has come (not the
        create's answer, which would otherwise hold the client for the whole batch)."""
        if advance:
            self._advance(batch)
        results = batch["results"] or []
        kinds = [r["type"] for r in results]
        if batch["ended_at"] is None:
            status = "cancelling" if batch["cancel_requested_at"] else "in_progress"
        elif batch["cancel_requested_at"] is not None:
            status = "cancelled"
        elif "expired" in kinds:
            status = "expired"
        else:
            status = "completed"
        created = int(batch["created_at"])
        return {
            "id": batch["id"], "object": "batch", "endpoint": "/v1/chat/completions",
            "errors": None, "input_file_id": batch["input_file_id"],
            "completion_window": "24h", "status": status,
            "output_file_id": batch["output_file_id"], "error_file_id": batch["error_file_id"],
            "created_at": created, "in_progress_at": created,
            "expires_at": created + 86400,
            "completed_at": int(batch["ended_at"]) if status == "completed" else None,
            "expired_at": int(batch["ended_at"]) if status == "expired" else None,
            "cancelled_at": int(batch["ended_at"]) if status == "cancelled" else None,
            "cancelling_at": int(batch["cancel_requested_at"])
            if batch["cancel_requested_at"] else None,
            "request_counts": {"total": batch["total"],
                               "completed": kinds.count("succeeded"),
                               "failed": len(kinds) - kinds.count("succeeded")},
            "metadata": batch["metadata"],
        }

    def _newest_after(self, route: str, after: str | None) -> list[dict[str, Any]]:
        """One API's batches, newest first, after the cursor id (both APIs page this way)."""
        ordered = sorted((b for b in self.batches.values() if b["route"] == route),
                         key=lambda b: b["created_at"], reverse=True)
        if after:
            ids = [b["id"] for b in ordered]
            ordered = ordered[ids.index(after) + 1:] if after in ids else []
        return ordered

    def _openai_list(self, request: Request) -> Response:
        limit = int(request.arg("limit") or 20)
        ordered = self._newest_after("openai", request.arg("after"))
        page = ordered[:limit]
        data = [self._openai_view(b) for b in page]
        return Response.json({"object": "list", "data": data,
                              "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None,
                              "has_more": len(ordered) > limit})

    # -- Anthropic --------------------------------------------------------------------------

    def _anthropic(self, request: Request, path: str, method: str) -> Response:
        if path == "/v1/messages/batches":
            if method == "POST":
                return self._anthropic_create(request)
            return self._anthropic_list(request)
        match = _ANTHROPIC_BATCH.match(path)
        batch = self.batches.get(match[1]) if match else None
        if match is None or batch is None or batch["route"] != "anthropic":
            return _anthropic_error(404, "Not found", "not_found_error")
        if match[2] == "/cancel" and method == "POST":
            self._cancel(batch)
        if match[2] == "/results":
            self._advance(batch)
            if batch["ended_at"] is None:
                return _anthropic_error(400, f"Message Batch {batch['id']} has not ended.")
            text = "".join(json.dumps(self._anthropic_line(r)) + "\n"
                           for r in batch["results"])
            return Response(200, text.encode("utf-8"),
                            [("Content-Type", "application/binary")])
        return Response.json(self._anthropic_view(batch, request))

    @staticmethod
    def _anthropic_line(r: dict[str, Any]) -> dict[str, Any]:
        if r["type"] == "succeeded":
            return {"custom_id": r["custom_id"], "result": {"type": "succeeded",
                                                            "message": r["body"]}}
        if r["type"] == "errored":
            error = (r.get("body") or {}).get("error") or {
                "type": "api_error", "message": "Internal server error"}
            return {"custom_id": r["custom_id"], "result": {
                "type": "errored", "error": {"type": "error", "error": error}}}
        return {"custom_id": r["custom_id"], "result": {"type": r["type"]}}

    def _anthropic_create(self, request: Request) -> Response:
        body = request.json()
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _anthropic_error(400, "requests: List should have at least 1 item")
        ids = [r.get("custom_id") for r in requests if isinstance(r, dict)]
        if len(ids) != len(requests) or len(set(ids)) != len(ids) or not all(
                isinstance(i, str) and re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) for i in ids):
            return _anthropic_error(400, "requests: every custom_id must be unique and match "
                                    "^[a-zA-Z0-9_-]{1,64}$")
        batch_id = f"msgbatch_{secrets.token_hex(12)}"
        self.batches[batch_id] = {
            "id": batch_id, "route": "anthropic", "requests": requests,
            "created_at": self.clock(), "total": len(requests), "cancel_requested_at": None,
            "ended_at": None, "results": None}
        self._save()
        return Response.json(self._anthropic_view(self.batches[batch_id], request,
                                                  advance=False))

    def _anthropic_view(self, batch: dict[str, Any], request: Request, *,
                        advance: bool = True) -> dict[str, Any]:
        if advance:
            self._advance(batch)
        results = batch["results"]
        ended = batch["ended_at"] is not None
        kinds = [r["type"] for r in results or []]
        status = "ended" if ended else ("canceling" if batch["cancel_requested_at"]
                                        else "in_progress")
        return {
            "id": batch["id"], "type": "message_batch", "processing_status": status,
            "request_counts": {"processing": 0 if ended else batch["total"],
                               "succeeded": kinds.count("succeeded"),
                               "errored": kinds.count("errored"),
                               "canceled": kinds.count("canceled"),
                               "expired": kinds.count("expired")},
            "created_at": _rfc3339(batch["created_at"]),
            "expires_at": _rfc3339(batch["created_at"] + 86400),
            "ended_at": _rfc3339(batch["ended_at"]), "archived_at": None,
            "cancel_initiated_at": _rfc3339(batch["cancel_requested_at"]),
            "results_url": (f"{request.scheme}://{request.host}/v1/messages/batches/"
                            f"{batch['id']}/results") if ended else None,
        }

    def _anthropic_list(self, request: Request) -> Response:
        limit = int(request.arg("limit") or 20)
        ordered = self._newest_after("anthropic", request.arg("after_id"))
        data = [self._anthropic_view(b, request) for b in ordered[:limit]]
        return Response.json({"data": data, "has_more": len(ordered) > limit,
                              "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None})
