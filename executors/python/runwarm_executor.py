"""runwarm executor shim for Python (protocol v1, handler mode).

Speaks the JSON Lines protocol of protocol/PROTOCOL.md with the runwarm supervisor: reads `init`,
loads the script's entry module once, then calls its handler once per `request`. Standard
library only; Python >= 3.8.

File descriptors: the protocol arrives on fd 0 and leaves on fd 1, user stdout belongs on the fd
named in RUNWARM_STDOUT_FD (3) and user stderr on fd 2. Before any user code runs, the shim keeps
private, non-inheritable copies of fds 0 and 1 for the protocol, points fd 1 at the user stdout
pipe and fd 0 at /dev/null. That way `print`, `os.write(1, ...)` and child processes write user
output where it belongs, and nothing the script does can read or write protocol bytes.
"""

import json
import os
import sys
import threading
import time
import traceback

PROTOCOL_VERSION = 1

# Compact separators; ensure_ascii=False keeps non-ASCII text readable and lines short.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_decode = json.loads


def _take_over_fds():
    """Returns (protocol_in, protocol_out) files after moving user stdio off the protocol fds."""
    proto_in = os.dup(0)  # os.dup makes non-inheritable copies (PEP 446)
    proto_out = os.dup(1)
    user_fd = 2  # without a user stdout pipe, stderr is the only safe place for user output
    named = os.environ.get("RUNWARM_STDOUT_FD")
    if named is not None:
        try:
            os.fstat(int(named))
            user_fd = int(named)
        except (ValueError, OSError):
            sys.stderr.write("runwarm: RUNWARM_STDOUT_FD=%r is not an open fd; user stdout goes to stderr\n" % named)
    os.dup2(user_fd, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
    except AttributeError:  # not a TextIOWrapper (embedded interpreters)
        pass
    return os.fdopen(proto_in, "rb"), os.fdopen(proto_out, "wb")


class Channel:
    """The protocol output: one JSON object per line, written whole under a lock so that a log
    call from a user thread cannot interleave with a response."""

    __slots__ = ("_out", "_lock")

    def __init__(self, out):
        self._out = out
        self._lock = threading.Lock()

    def send_line(self, data):
        with self._lock:
            self._out.write(data)
            self._out.flush()

    def send(self, msg):
        self.send_line(_encode(msg).encode("utf-8", "replace") + b"\n")


def _error(exc, kind=None, own_frames=0):
    """An error body; `own_frames` leading traceback frames are the shim's and are left out."""
    tb = exc.__traceback__
    for _ in range(own_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return {
        "kind": kind or type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "trace": "".join(traceback.format_exception(type(exc), exc, tb)),
    }


def _flush_user_output():
    # Output written before a response must be in the pipe when the response arrives.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


class Context:
    """What a handler gets besides the event. `log` sends a structured record tagged with the
    request, so the supervisor files it under this execution."""

    __slots__ = ("request_id", "execution_id", "deadline_ms", "attempt", "caller", "_channel")

    def __init__(self, request_id, ctx, channel):
        self.request_id = request_id
        self.execution_id = ctx.get("execution_id", "")
        self.deadline_ms = ctx.get("deadline_ms", 0)
        self.attempt = ctx.get("attempt", 1)
        self.caller = ctx.get("caller") or {}
        self._channel = channel

    def remaining_ms(self):
        return max(0, self.deadline_ms - int(time.time() * 1000))

    # The name AWS Lambda's Python context uses, so ported handlers keep working.
    get_remaining_time_in_millis = remaining_ms

    def log(self, message, level="info", **fields):
        msg = {"type": "log", "id": self.request_id, "level": level, "message": str(message)}
        if fields:
            msg["fields"] = fields
        _flush_user_output()
        try:
            data = _encode(msg)
        except (TypeError, ValueError):
            msg["fields"] = {k: repr(v) for k, v in fields.items()}
            data = _encode(msg)
        self._channel.send_line(data.encode("utf-8", "replace") + b"\n")


class InitFailure(Exception):
    def __init__(self, kind, message, trace=None):
        super().__init__(message)
        self.body = {"kind": kind, "message": message}
        if trace:
            self.body["trace"] = trace


def _load_handler(script, env):
    if script.get("mode", "handler") != "handler":
        raise InitFailure("UnsupportedMode", "the python executor serves handler mode only, not %r" % script.get("mode"))
    os.environ.update({k: "" if v is None else str(v) for k, v in (env or {}).items()})
    root = os.path.abspath(script.get("root") or ".")
    entry = script.get("entry") or ""
    name = script.get("handler") or "handler"
    path = os.path.join(root, entry)
    if not os.path.isfile(path):
        raise InitFailure("EntryNotFound", "entry %r not found in %s" % (entry, root))
    os.chdir(root)
    sys.path.insert(0, root)

    import importlib.machinery
    import importlib.util

    stem = os.path.splitext(os.path.basename(entry))[0]
    modname = stem if stem.isidentifier() and stem not in sys.modules else "__runwarm_entry__"
    # SourceFileLoader accepts any file name, not only *.py.
    loader = importlib.machinery.SourceFileLoader(modname, path)
    spec = importlib.util.spec_from_loader(modname, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        loader.exec_module(module)
    except BaseException as exc:  # SyntaxError, ImportError, and whatever top-level code raises
        sys.modules.pop(modname, None)
        body = _error(exc)
        raise InitFailure(body["kind"], body["message"], body["trace"])
    handler = getattr(module, name, None)
    if handler is None:
        raise InitFailure("HandlerNotFound", "%s has no attribute %r" % (entry, name))
    if not callable(handler):
        raise InitFailure("HandlerNotCallable", "%s: %r is a %s, not a function" % (entry, name, type(handler).__name__))
    return handler


class Executor:
    def __init__(self, proto_in, channel):
        self.proto_in = proto_in
        self.channel = channel
        self.handler = None
        self.loop = None  # one event loop for every async handler call, created on first use

    def serve(self):
        readline = self.proto_in.readline
        while True:
            line = readline()
            if not line:
                self.exit(0)  # EOF: the supervisor is gone
            if line.isspace():
                continue
            try:
                msg = _decode(line)
                kind = msg["type"]
            except Exception as exc:
                sys.stderr.write("runwarm: ignoring unreadable protocol line (%s)\n" % exc)
                continue
            if kind == "request":
                self.request(msg)
            elif kind == "ping":
                self.channel.send({"type": "pong", "id": msg.get("id")})
            elif kind == "init":
                self.init(msg)
            elif kind == "shutdown":
                self.exit(0)
            # anything else comes from a newer supervisor: ignored (PROTOCOL.md §3)

    def init(self, msg):
        if self.handler is not None:
            sys.stderr.write("runwarm: ignoring a second init\n")
            return
        try:
            if msg.get("protocol", PROTOCOL_VERSION) != PROTOCOL_VERSION:
                raise InitFailure("UnsupportedProtocol", "this executor speaks protocol %d, not %r"
                                  % (PROTOCOL_VERSION, msg.get("protocol")))
            self.handler = _load_handler(msg.get("script") or {}, msg.get("env"))
        except BaseException as exc:
            body = exc.body if isinstance(exc, InitFailure) else _error(exc)
            _flush_user_output()
            self.channel.send({"type": "init_error", "error": body})
            self.exit(1)
        _flush_user_output()
        self.channel.send(
            {
                "type": "ready",
                "protocol": PROTOCOL_VERSION,
                "runtime": "python" + ".".join(map(str, sys.version_info[:3])),
                "pid": os.getpid(),
            }
        )

    def request(self, msg):
        rid = msg.get("id")
        if self.handler is None:
            self.channel.send({"type": "response", "id": rid, "success": False,
                               "error": {"kind": "NotInitialized", "message": "request before init"}})
            return
        ctx = Context(rid, msg.get("context") or {}, self.channel)
        try:
            result = self.handler(msg.get("payload"), ctx)
            if hasattr(result, "__await__"):
                result = self.run_async(result)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt fail the request too
            body = _error(exc, own_frames=1)
            if isinstance(exc, SystemExit):
                body["message"] = "handler called sys.exit(%r); a warm executor does not exit" % (exc.code,)
            out = {"type": "response", "id": rid, "success": False, "error": body}
            _flush_user_output()
            self.channel.send(out)
            return
        try:
            data = _encode({"type": "response", "id": rid, "success": True, "result": result}).encode("utf-8")
        except Exception as exc:  # TypeError, ValueError (NaN, cycles), RecursionError, lone surrogates
            _flush_user_output()
            error = {"kind": "SerializationError", "message": "result is not JSON: %s" % exc}
            self.channel.send({"type": "response", "id": rid, "success": False, "error": error})
            return
        _flush_user_output()
        self.channel.send_line(data + b"\n")

    def run_async(self, awaitable):
        if self.loop is None:
            import asyncio

            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(awaitable)

    def exit(self, code):
        _flush_user_output()
        # Skip interpreter teardown: user threads that never end must not keep a warm executor
        # alive after shutdown. atexit hooks still run so scripts can clean up.
        try:
            import atexit

            atexit._run_exitfuncs()
        except BaseException:
            pass
        _flush_user_output()
        os._exit(code)


def main():
    proto_in, proto_out = _take_over_fds()
    Executor(proto_in, Channel(proto_out)).serve()


if __name__ == "__main__":
    main()
