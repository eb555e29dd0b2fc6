"""A scripted OpenAI-compatible chat endpoint on 127.0.0.1, for tests of the llm agent.

Each POST to /v1/chat/completions takes the next entry of the script: a reply (text
and/or tool calls), an HTTP error (e.g. 429 with retry-after), or a hang longer than the
client's timeout. An entry may be a function of the request body, so a script can look
at what the agent saw. Every request body is kept in `requests`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Entry = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
_ids = itertools.count(1)


def bash(command: str, thought: str = "") -> dict[str, Any]:
    return {"content": thought, "tool_calls": [("bash", {"command": command})]}


def submit() -> dict[str, Any]:
    return {"content": "", "tool_calls": [("submit", {})]}


def text(content: str) -> dict[str, Any]:
    return {"content": content}


def error(status: int, message: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"status": status, "message": message or f"scripted {status}", "headers": headers or {}}


def hang(seconds: float) -> dict[str, Any]:
    return {"hang": seconds}


def _completion(entry: dict[str, Any], model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": entry.get("content") or None}
    calls = entry.get("tool_calls") or []
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{next(_ids)}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(args)}} for name, args in calls]
    prompt, completion = entry.get("usage", (120, 30))
    return {"id": f"chatcmpl-{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}}


class ScriptedEndpoint:
    def __init__(self, script: list[Entry]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with endpoint._lock:
                    endpoint.requests.append(body)
                    entry = endpoint.script.pop(0) if endpoint.script else submit()
                if callable(entry):
                    entry = entry(body)
                if "hang" in entry:
                    time.sleep(entry["hang"])
                    return
                if "status" in entry:
                    payload = json.dumps({"error": {"message": entry["message"],
                                                    "type": "scripted", "code": None}}).encode()
                    self.send_response(entry["status"])
                    for name, value in entry["headers"].items():
                        self.send_header(name, value)
                else:
                    payload = json.dumps(_completion(entry, body.get("model", "m"))).encode()
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
