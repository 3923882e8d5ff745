#!/usr/bin/env python3
"""Mock LLM HTTP/1.1 server for ClawChat integration and shell tests.

Speaks the real streaming formats of the OpenAI Chat Completions API
(POST .../chat/completions) and the Anthropic Messages API (POST .../messages),
and misbehaves on demand. The behaviour is picked by the base URL:

    http://127.0.0.1:PORT/s/<scenario>/v1        e.g. /s/ok,pieces=20/v1
    http://127.0.0.1:PORT/v1                     (scenario "ok")

<scenario> is a name plus optional comma-separated key=value options.
Control endpoints: GET /_log (JSON array of events), POST /_reset.

Process contract: prints the bound port alone on the first stdout line, exits
on stdin EOF (unless --no-stdin) and on SIGTERM. Standard library only.
See README.md next to this file for the scenario list.
"""

import argparse
import json
import os
import re
import select
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer

WAIT_STEP = 0.005  # seconds; granularity of client-close detection while waiting

# --------------------------------------------------------------------------
# Shared state: event log and per-scenario attempt counters
# --------------------------------------------------------------------------


class State:
    def __init__(self, log_path=None):
        self.lock = threading.Lock()
        self.events = []
        self.attempts = {}  # exact scenario string -> number of requests seen
        self.seq = 0  # global request sequence number ("req" field)
        self.log_file = open(log_path, "a", encoding="utf-8") if log_path else None

    def record(self, event, **fields):
        obj = {"t": time.time(), "event": event}
        obj.update(fields)
        with self.lock:
            self.events.append(obj)
            if self.log_file:
                self.log_file.write(json.dumps(obj) + "\n")
                self.log_file.flush()
        return obj

    def next_attempt(self, scenario):
        with self.lock:
            self.seq += 1
            n = self.attempts.get(scenario, 0) + 1
            self.attempts[scenario] = n
            return self.seq, n

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def reset(self):
        with self.lock:
            self.events.clear()
            self.attempts.clear()


STATE = None  # set in main()

# --------------------------------------------------------------------------
# Helpers: scenario parsing, reply text, error bodies
# --------------------------------------------------------------------------


class ClientClosed(Exception):
    """The client closed the connection before we finished the response."""


def parse_scenario(segment):
    """'ok,pieces=3' -> ('ok', {'pieces': '3'})"""
    parts = segment.split(",")
    opts = {}
    for p in parts[1:]:
        if not p:
            continue
        k, _, v = p.partition("=")
        opts[k.strip()] = v.strip()
    return parts[0].strip(), opts


def opt_int(opts, name, default):
    try:
        return int(float(opts[name]))
    except (KeyError, ValueError):
        return default


def text_of(content):
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b.get("text", "") for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return str(content)


def reply_text(body):
    last = ""
    for m in body.get("messages") or []:
        if isinstance(m, dict) and m.get("role") == "user":
            last = text_of(m.get("content"))
    return "You said: " + last


def split_pieces(text, n):
    """Split into min(n, len(text)) roughly equal, non-empty pieces."""
    k = max(1, min(n, len(text)))
    if not text:
        return []
    bounds = [i * len(text) // k for i in range(k + 1)]
    return [text[bounds[i]:bounds[i + 1]] for i in range(k)]


def token_counts(body, text):
    prompt_chars = sum(
        len(text_of(m.get("content")))
        for m in body.get("messages") or [] if isinstance(m, dict)
    )
    prompt_chars += len(text_of(body.get("system")))
    return max(1, prompt_chars // 4), max(1, len(text) // 4)


OPENAI_ERRORS = {
    400: ("invalid_request_error", "invalid_request", "Invalid request (mock)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (mock)."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden (mock)."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist (mock)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (mock)."),
}
ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request (mock)."),
    401: ("authentication_error", "invalid x-api-key (mock)"),
    403: ("permission_error", "Permission denied (mock)."),
    404: ("not_found_error", "Not found (mock)."),
    413: ("request_too_large", "Request too large (mock)."),
    429: ("rate_limit_error", "Rate limited (mock)."),
    529: ("overloaded_error", "Overloaded"),
}

EXTRA_REASONS = {529: "Overloaded", 520: "Unknown Error", 522: "Connection Timed Out"}


def error_body(api, code, message=None):
    """Provider-shaped JSON error body for HTTP status `code`."""
    if api == "anthropic":
        typ, msg = ANTHROPIC_ERRORS.get(
            code, ("api_error" if code >= 500 else "invalid_request_error",
                   "Mock error %d." % code))
        return {"type": "error", "error": {"type": typ, "message": message or msg}}
    typ, ecode, msg = OPENAI_ERRORS.get(
        code, ("server_error" if code >= 500 else "invalid_request_error",
               "mock_error_%d" % code, "Mock error %d." % code))
    return {"error": {"message": message or msg, "type": typ, "param": None, "code": ecode}}


# --------------------------------------------------------------------------
# Stream builders: lists of raw SSE event bytes for each API
# --------------------------------------------------------------------------


def sse(data, event=None):
    if not isinstance(data, (str, bytes)):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"


class OpenAIStream:
    def __init__(self, body, text):
        self.body, self.text = body, text
        self.model = body.get("model")
        self.created = int(time.time())

    def chunk(self, delta, finish=None):
        return sse({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                    "created": self.created, "model": self.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def preamble(self):
        return [self.chunk({"role": "assistant", "content": ""})]

    def piece(self, p):
        return self.chunk({"content": p})

    def bad_piece(self):
        return b'data: {"choices":[{"delta":{"content":"x"\n\n'

    def trailer(self):
        out = [self.chunk({}, "stop")]
        opts = self.body.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage") is True:
            n, m = token_counts(self.body, self.text)
            out.append(sse({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                            "created": self.created, "model": self.model, "choices": [],
                            "usage": {"prompt_tokens": n, "completion_tokens": m,
                                      "total_tokens": n + m}}))
        out.append(b"data: [DONE]\n\n")
        return out

    def mid_error(self):
        return sse({"error": {"message": "The server had an error while processing your request.",
                              "type": "server_error", "param": None, "code": None}})

    def full_json(self):
        n, m = token_counts(self.body, self.text)
        return {"id": "chatcmpl-mock", "object": "chat.completion",
                "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": n, "completion_tokens": m, "total_tokens": n + m}}


class AnthropicStream:
    def __init__(self, body, text):
        self.body, self.text = body, text
        self.model = body.get("model")

    @staticmethod
    def ev(obj):
        return sse(obj, event=obj["type"])

    def preamble(self):
        n, _ = token_counts(self.body, self.text)
        return [
            self.ev({"type": "message_start", "message": {
                "id": "msg_mock", "type": "message", "role": "assistant", "content": [],
                "model": self.model, "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": n, "output_tokens": 1}}}),
            self.ev({"type": "content_block_start", "index": 0,
                     "content_block": {"type": "text", "text": ""}}),
            self.ev({"type": "ping"}),
        ]

    def piece(self, p):
        return self.ev({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": p}})

    def bad_piece(self):
        return (b'event: content_block_delta\n'
                b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"\n\n')

    def trailer(self):
        _, m = token_counts(self.body, self.text)
        return [
            self.ev({"type": "content_block_stop", "index": 0}),
            self.ev({"type": "message_delta",
                     "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                     "usage": {"output_tokens": m}}),
            self.ev({"type": "message_stop"}),
        ]

    def mid_error(self):
        return sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                   event="error")

    def full_json(self):
        n, m = token_counts(self.body, self.text)
        return {"id": "msg_mock", "type": "message", "role": "assistant", "model": self.model,
                "content": [{"type": "text", "text": self.text}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": n, "output_tokens": m}}


HTML_PAGE = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
             b"</body>\r\n</html>\n")

# --------------------------------------------------------------------------
# Request handler
# --------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1.0"
    # TCP_NODELAY, as real API servers set it: each SSE chunk is its own small write, and with
    # Nagle a chunk waits for the ACK of the previous one (up to the client's 40 ms delayed ACK).
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # keep stderr quiet unless --verbose
        if self.server.verbose:
            super().log_message(fmt, *args)

    # ---- low-level I/O with client-close detection ----

    def ctx(self):
        return {"scenario": self.scenario, "api": self.api, "req": self.req,
                "attempt": self.attempt}

    def client_gone(self):
        """Non-blocking check: has the client closed (FIN/RST)?"""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (ConnectionResetError, OSError):
            return True

    def wait(self, seconds, what):
        """Sleep up to `seconds` (None = forever), raising ClientClosed as soon
        as the client closes. Never sleeps longer than WAIT_STEP blindly."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            step = WAIT_STEP
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                step = min(step, left)
            try:
                r, _, _ = select.select([self.connection], [], [], step)
                if r:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        raise ClientClosed("client closed while " + what)
                    time.sleep(step)  # pipelined data, not a close; avoid spinning
            except OSError as e:  # includes ConnectionResetError
                raise ClientClosed("connection reset while %s (%s)" % (what, type(e).__name__))

    def raw(self, data):
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            raise ClientClosed("write failed: " + type(e).__name__)

    def start(self, status, ctype, extra=None, length=None):
        self.send_response(status, EXTRA_REASONS.get(status))
        self.send_header("Content-Type", ctype)
        if ctype == "text/event-stream":
            self.send_header("Cache-Control", "no-cache")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("x-request-id", "req_mock_%d" % self.req)
        try:
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            raise ClientClosed("write failed: " + type(e).__name__)
        self.status = status

    def chunk(self, data):
        if data:
            self.raw(b"%x\r\n" % len(data) + data + b"\r\n")

    def end_chunked(self, detail="ok"):
        self.raw(b"0\r\n\r\n")
        self.finished(detail)

    def finished(self, detail):
        STATE.record("finished", status=self.status, detail=detail, **self.ctx())

    def send_json(self, status, obj, extra=None, detail="ok"):
        data = json.dumps(obj).encode()
        self.start(status, "application/json", extra, length=len(data))
        self.raw(data)
        self.finished(detail)

    def send_whole(self, status, ctype, data, detail):
        self.start(status, ctype, length=len(data))
        self.raw(data)
        self.finished(detail)

    def abort_connection(self):
        """Close the TCP connection abruptly (no terminating chunk)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    # ---- HTTP entry points ----

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def control_json(self, obj):
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_log":
            return self.control_json(STATE.snapshot())
        if path == "/_health":
            return self.control_json({"ok": True})
        self.not_found()

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        raw_body = self.read_body()
        if path == "/_reset":
            STATE.reset()
            return self.control_json({"ok": True})

        m = re.match(r"^/s/([^/]+)(/.*)?$", path)
        self.scenario = urllib.parse.unquote(m.group(1)) if m else "ok"
        rest = (m.group(2) or "") if m else path
        if rest.endswith("/chat/completions"):
            self.api = "openai"
        elif rest.endswith("/messages"):
            self.api = "anthropic"
        else:
            STATE.record("unmatched", method="POST", path=self.path)
            return self.not_found()

        self.req, self.attempt = STATE.next_attempt(self.scenario)
        self.status = None
        try:
            body = json.loads(raw_body)
        except (ValueError, UnicodeDecodeError):
            body = None
        STATE.record("request", path=self.path,
                     headers={k.lower(): v for k, v in self.headers.items()},
                     body=body, **self.ctx())

        try:
            if not isinstance(body, dict):
                msg = "mock-llm: request body is not a JSON object"
                return self.send_json(400, error_body(self.api, 400, msg), detail=msg)
            self.dispatch(body)
        except ClientClosed as e:
            self.close_connection = True
            STATE.record("closed", detail=str(e), status=self.status, **self.ctx())

    def not_found(self):
        data = json.dumps({"error": {"message": "mock-llm: no route for %s" % self.path,
                                     "type": "invalid_request_error", "param": None,
                                     "code": "not_found"}}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # ---- scenarios ----

    def dispatch(self, body):
        name, opts = parse_scenario(self.scenario)
        text = reply_text(body)
        self.opts = opts
        self.body = body
        self.streaming = body.get("stream") is True
        self.stream = (OpenAIStream if self.api == "openai" else AnthropicStream)(body, text)
        self.pieces = split_pieces(text, opt_int(opts, "pieces", 5))
        self.delay = opt_int(opts, "chunk_delay_ms", 0) / 1000.0
        # slow_match=WORD,slow_delay_ms=N: requests whose last user message contains WORD stream
        # with N ms between chunks instead (a slow cron job beside a quick chat on one mock).
        if "slow_match" in opts and opts["slow_match"] in text:
            self.delay = opt_int(opts, "slow_delay_ms", 1000) / 1000.0

        # Any scenario with times=N misbehaves for its first N requests only, then answers as
        # `ok`: one base URL shows both the failure and that the client keeps being served.
        if "times" in opts and self.attempt > opt_int(opts, "times", 0):
            return self.scenario_ok()
        m = re.match(r"^status-(\d{3})(-then-ok)?$", name)
        if m:
            return self.scenario_status(int(m.group(1)), bool(m.group(2)))
        handler = SCENARIOS.get(name)
        if handler is None:
            msg = "mock-llm: unknown scenario %r" % name
            return self.send_json(400, error_body(self.api, 400, msg), detail=msg)
        handler(self)

    def stream_pieces(self, pieces):
        for i, p in enumerate(pieces):
            if i > 0 and self.delay > 0:
                self.wait(self.delay, "waiting between chunks")
            self.chunk(self.stream.piece(p))

    def scenario_ok(self):
        """Normal reply (streaming or not)."""
        if not self.streaming:
            return self.send_json(200, self.stream.full_json())
        self.start(200, "text/event-stream")
        for ev in self.stream.preamble():
            self.chunk(ev)
        self.stream_pieces(self.pieces)
        if self.delay > 0:
            self.wait(self.delay, "waiting before final events")
        for ev in self.stream.trailer():
            self.chunk(ev)
        self.end_chunked()

    def scenario_status(self, code, then_ok):
        """status-CODE[-then-ok]: error status with provider JSON body."""
        if then_ok and self.attempt > opt_int(self.opts, "fail", 1):
            return self.scenario_ok()
        extra = {}
        if "retry_after" in self.opts:
            extra["retry-after"] = self.opts["retry_after"]
        if "retry_after_ms" in self.opts:
            extra["retry-after-ms"] = self.opts["retry_after_ms"]
        if "should_retry" in self.opts:
            extra["x-should-retry"] = self.opts["should_retry"]
        self.send_json(code, error_body(self.api, code), extra, detail="status %d" % code)

    def scenario_cut(self):
        """Preamble + `after` content pieces, then an abrupt TCP close."""
        after = opt_int(self.opts, "after", 2)
        if not self.streaming:
            data = json.dumps(self.stream.full_json()).encode()
            self.start(200, "application/json", length=len(data))
            self.raw(data[:len(data) // 2])
        else:
            self.start(200, "text/event-stream")
            for ev in self.stream.preamble():
                self.chunk(ev)
            self.stream_pieces(self.pieces[:after])
        STATE.record("finished", status=200, detail="cut: connection closed abruptly", **self.ctx())
        self.abort_connection()

    def scenario_bad_json(self):
        """First piece, one event with invalid JSON data, then the rest."""
        if not self.streaming:
            return self.send_whole(200, "application/json", b'{"choices":[{"message":{"content":"x"',
                                   "bad-json (non-streaming)")
        self.start(200, "text/event-stream")
        for ev in self.stream.preamble():
            self.chunk(ev)
        self.stream_pieces(self.pieces[:1])
        self.chunk(self.stream.bad_piece())
        self.stream_pieces(self.pieces[1:])
        for ev in self.stream.trailer():
            self.chunk(ev)
        self.end_chunked("bad-json")

    def scenario_bad_sse(self):
        """200 text/event-stream whose body is an HTML page (no events)."""
        self.start(200, "text/event-stream")
        self.chunk(HTML_PAGE)
        self.end_chunked("bad-sse")

    def scenario_mid_error(self):
        """Beginning of a stream, one piece, then an in-stream error event."""
        if not self.streaming:
            return self.send_json(200, error_body(self.api, 529 if self.api == "anthropic" else 500),
                                  detail="mid-error (non-streaming: error object with 200)")
        self.start(200, "text/event-stream")
        pre = self.stream.preamble()
        if self.api == "anthropic":
            pre = pre[:2]  # message_start, content_block_start
        for ev in pre:
            self.chunk(ev)
        self.stream_pieces(self.pieces[:1])
        self.chunk(self.stream.mid_error())
        self.end_chunked("mid-error")

    def scenario_keepalive_only(self):
        """200 event-stream headers, then ': keep-alive' comments forever."""
        interval = opt_int(self.opts, "interval_ms", 200) / 1000.0
        self.start(200, "text/event-stream")
        while True:
            self.chunk(b": keep-alive\n\n")
            self.wait(interval, "sending keep-alives")

    def scenario_slow_first_byte(self):
        """Wait `delay_ms` before the status line, then behave as ok."""
        self.wait(opt_int(self.opts, "delay_ms", 1500) / 1000.0, "delaying first byte")
        self.scenario_ok()

    def scenario_never(self):
        """Send nothing at all until the client closes."""
        self.wait(None, "sending nothing (never)")

    def scenario_html_200(self):
        """200 text/html page, as from a misconfigured base URL."""
        self.send_whole(200, "text/html", HTML_PAGE.replace(b"502 Bad Gateway", b"Welcome"),
                        "html-200")


SCENARIOS = {
    "ok": Handler.scenario_ok,
    "cut": Handler.scenario_cut,
    "bad-json": Handler.scenario_bad_json,
    "bad-sse": Handler.scenario_bad_sse,
    "mid-error": Handler.scenario_mid_error,
    "keepalive-only": Handler.scenario_keepalive_only,
    "slow-first-byte": Handler.scenario_slow_first_byte,
    "never": Handler.scenario_never,
    "html-200": Handler.scenario_html_200,
}

# --------------------------------------------------------------------------
# Server / process
# --------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    verbose = False

    def server_bind(self):
        # Skip HTTPServer.server_bind's socket.getfqdn() (can stall on DNS).
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def watch_stdin():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main():
    global STATE
    ap = argparse.ArgumentParser(description="Mock LLM server (OpenAI / Anthropic streaming).")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = ephemeral)")
    ap.add_argument("--no-stdin", action="store_true", help="do not exit on stdin EOF")
    ap.add_argument("--log-file", help="append one JSON line per event to this file")
    ap.add_argument("--verbose", action="store_true", help="log HTTP requests to stderr")
    args = ap.parse_args()

    STATE = State(args.log_file)
    Server.verbose = args.verbose
    server = Server(("127.0.0.1", args.port), Handler)

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    print(server.server_address[1], flush=True)
    if not args.no_stdin:
        threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        server.serve_forever()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
