"""Command mode: reads the payload from args.json, checks a TCP port (and optionally an HTTP
path), prints a JSON result as its last line, exits non-zero when the service is down."""
import http.client
import json
import os
import socket
import sys
import time

with open(os.environ["RUNWARM_ARGS_FILE"]) as f:
    args = json.load(f)
host = args.get("host", "127.0.0.1")
port = int(args["port"])
timeout = float(args.get("timeout_s", 2))
path = args.get("http_path")

started = time.monotonic()
try:
    if path:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("GET", path)
        status = conn.getresponse().status
        ok = 200 <= status < 400
        detail = {"http_status": status}
    else:
        with socket.create_connection((host, port), timeout=timeout):
            pass
        ok, detail = True, {}
except OSError as e:
    ok, detail = False, {"error": str(e)}
elapsed_ms = round((time.monotonic() - started) * 1000, 2)
print(json.dumps({"host": host, "port": port, "ok": ok, "ms": elapsed_ms, **detail}))
if not ok:
    print(f"{host}:{port} is not healthy: {detail}", file=sys.stderr)
    sys.exit(1)
