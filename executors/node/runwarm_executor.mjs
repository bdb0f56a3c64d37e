// runwarm executor shim for Node.js (protocol v1, handler mode). No npm dependencies; Node >= 20.
//
// Speaks the JSON Lines protocol of protocol/PROTOCOL.md with the runwarm supervisor: reads
// `init`, imports the script's entry once, then calls its handler once per `request`, strictly
// one message at a time.
//
// File descriptors: protocol in on fd 0, protocol out on fd 1, user stdout on the fd named in
// RUNWARM_STDOUT_FD (3), user stderr on fd 2. Node cannot dup2, so unlike the Python shim it
// cannot simply point fd 1 somewhere else. Instead, before any user code loads, it
//   - replaces `process.stdout` (and with it console.log/info/debug) by a stream on fd 3,
//   - makes `fs.writeSync(1, …)` / `fs.write(1, …)` write to fd 3,
//   - wraps child_process so that a child that would inherit fd 1 inherits fd 3 instead, and
//     one that would inherit fd 0 (the protocol input) gets /dev/null.
// What remains unguarded is documented in README.md (e.g. opening /dev/stdout by path).
//
// The handler's context: executionId / execution_id, deadlineMs / deadline_ms, attempt, caller,
// remainingMs() / remaining_ms() / getRemainingTimeInMillis(), and
// log(message, level = "info", fields = {}) which sends a protocol `log` record.

import childProcess from "node:child_process";
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import path from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";

const PROTOCOL_VERSION = 1;
const PROTOCOL_OUT = 1;
const rawWriteSync = fs.writeSync;
const rawWrite = fs.write;
const napping = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `data`, also on a non-blocking fd (EAGAIN) and after partial writes. */
function writeAll(fd, data) {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += rawWriteSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
      Atomics.wait(napping, 0, 0, 1);
    }
  }
}

function note(text) {
  try {
    writeAll(2, `runwarm: ${text}\n`);
  } catch {
    // stderr is gone; nothing left to tell
  }
}

// === user output off the protocol channel ===

function userStdoutFd() {
  const named = process.env.RUNWARM_STDOUT_FD;
  if (named !== undefined) {
    const fd = Number(named);
    try {
      fs.fstatSync(fd);
      return fd;
    } catch {
      note(`RUNWARM_STDOUT_FD=${named} is not an open fd; user stdout goes to stderr`);
    }
  }
  return 2; // without a user stdout pipe, stderr is the only safe place for user output
}

const USER_FD = userStdoutFd();

function toBuffer(chunk, encoding) {
  return typeof chunk === "string" ? Buffer.from(chunk, encoding || "utf8") : chunk;
}

// Synchronous, so output written before a response is in the pipe when the response is sent.
const userStdout = new Writable({
  write(chunk, encoding, cb) {
    try {
      writeAll(USER_FD, toBuffer(chunk, encoding));
      cb();
    } catch (e) {
      cb(e);
    }
  },
});
userStdout.write = function write(chunk, encoding, cb) {
  if (typeof encoding === "function") [cb, encoding] = [encoding, undefined];
  writeAll(USER_FD, toBuffer(chunk, encoding));
  if (cb) process.nextTick(cb);
  return true;
};
userStdout.fd = USER_FD; // lets `stdio: [0, process.stdout, 2]` hand fd 3 to children
userStdout.isTTY = false;
// process.stdout is a lazy getter; replacing it before first use also keeps Node from putting
// fd 1 into non-blocking mode, and the global console binds lazily to whatever it returns.
Object.defineProperty(process, "stdout", {
  configurable: true,
  enumerable: true,
  get: () => userStdout,
});

fs.writeSync = function writeSync(fd, ...rest) {
  return rawWriteSync(fd === 1 ? USER_FD : fd, ...rest);
};
fs.write = function write(fd, ...rest) {
  return rawWrite(fd === 1 ? USER_FD : fd, ...rest);
};

function redirectStdio(stdio, forked) {
  if (stdio === "inherit") stdio = forked ? ["inherit", "inherit", "inherit", "ipc"] : ["inherit", "inherit", "inherit"];
  if (!Array.isArray(stdio)) return stdio;
  const out = stdio.slice();
  if (out[0] === "inherit" || out[0] === 0) out[0] = "ignore";
  if (out[1] === "inherit" || out[1] === 1) out[1] = USER_FD;
  return out;
}

/** Index of the options argument of a child_process call (after the command and its args). */
function optionsIndex(args) {
  return Array.isArray(args[1]) || (args[1] == null && args.length > 2) ? 2 : 1;
}

function wrapSpawner(name, forked) {
  const original = childProcess[name];
  childProcess[name] = function (...args) {
    const i = optionsIndex(args);
    const given = args[i];
    const isOptions = given !== null && typeof given === "object" && !Array.isArray(given);
    if (!isOptions && !forked) return original.apply(this, args);
    const options = isOptions ? { ...given } : {};
    if (options.stdio !== undefined) {
      options.stdio = redirectStdio(options.stdio, forked);
    } else if (forked && !options.silent) {
      options.stdio = ["ignore", USER_FD, 2, "ipc"]; // fork inherits stdio by default
    }
    if (isOptions || given === undefined) args[i] = options;
    else args.splice(i, 0, options);
    return original.apply(this, args);
  };
}

for (const name of ["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync"]) {
  wrapSpawner(name, false);
}
wrapSpawner("fork", true);
// `import { spawn } from "node:child_process"` in user ESM sees the wrapped functions too.
syncBuiltinESMExports();

// === protocol ===

function send(msg) {
  writeAll(PROTOCOL_OUT, JSON.stringify(msg) + "\n");
}

function errorBody(e) {
  const isObject = e !== null && typeof e === "object";
  const kind = (isObject && (e.name || e.constructor?.name)) || "Error";
  const message = isObject && typeof e.message === "string" ? e.message : String(e);
  const body = { kind: String(kind), message: message || String(kind) };
  if (isObject && typeof e.stack === "string") body.trace = e.stack;
  return body;
}

class Context {
  constructor(requestId, c) {
    this.requestId = requestId;
    this.executionId = this.execution_id = c.execution_id ?? "";
    this.deadlineMs = this.deadline_ms = c.deadline_ms ?? 0;
    this.attempt = c.attempt ?? 1;
    this.caller = c.caller ?? {};
  }
  remainingMs() {
    return Math.max(0, this.deadlineMs - Date.now());
  }
  remaining_ms() {
    return this.remainingMs();
  }
  // The name AWS Lambda's Node context uses, so ported handlers keep working.
  getRemainingTimeInMillis() {
    return this.remainingMs();
  }
  log(message, level = "info", fields = undefined) {
    const msg = { type: "log", id: this.requestId, level: String(level), message: String(message) };
    if (fields && typeof fields === "object" && Object.keys(fields).length) msg.fields = fields;
    let line;
    try {
      line = JSON.stringify(msg);
    } catch {
      msg.fields = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)]));
      line = JSON.stringify(msg);
    }
    writeAll(PROTOCOL_OUT, line + "\n");
  }
}

class InitFailure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

async function loadHandler(script, env) {
  const mode = script.mode ?? "handler";
  if (mode !== "handler") throw new InitFailure("UnsupportedMode", `the node executor serves handler mode only, not ${mode}`);
  for (const [k, v] of Object.entries(env ?? {})) process.env[k] = v == null ? "" : String(v);
  const root = path.resolve(script.root || ".");
  const entry = script.entry || "";
  const name = script.handler || "handler";
  const abs = path.resolve(root, entry);
  if (!entry || !fs.statSync(abs, { throwIfNoEntry: false })?.isFile()) {
    throw new InitFailure("EntryNotFound", `entry ${JSON.stringify(entry)} not found in ${root}`);
  }
  process.chdir(root);
  // import() loads ES modules and CommonJS alike (module.exports becomes `default`).
  const mod = await import(pathToFileURL(abs).href);
  const handler = mod[name] ?? mod.default?.[name];
  if (handler === undefined) throw new InitFailure("HandlerNotFound", `${entry} exports no ${JSON.stringify(name)}`);
  if (typeof handler !== "function") {
    throw new InitFailure("HandlerNotCallable", `${entry} export ${JSON.stringify(name)} is a ${typeof handler}, not a function`);
  }
  return handler;
}

let handler = null;

async function init(msg) {
  if (handler !== null) return note("ignoring a second init");
  try {
    if ((msg.protocol ?? PROTOCOL_VERSION) !== PROTOCOL_VERSION) {
      throw new InitFailure("UnsupportedProtocol", `this executor speaks protocol ${PROTOCOL_VERSION}, not ${msg.protocol}`);
    }
    handler = await loadHandler(msg.script ?? {}, msg.env);
  } catch (e) {
    let error = { kind: e.kind, message: e.message };
    if (!(e instanceof InitFailure)) {
      error = errorBody(e);
      error.message = `loading ${msg.script?.entry}: ${error.message}`;
    }
    send({ type: "init_error", error });
    process.exit(1);
  }
  send({ type: "ready", protocol: PROTOCOL_VERSION, runtime: `node${process.versions.node}`, pid: process.pid });
}

function respond(id, result) {
  let line;
  try {
    line = JSON.stringify({ type: "response", id, success: true, result: result === undefined ? null : result });
  } catch (e) {
    line = JSON.stringify({
      type: "response",
      id,
      success: false,
      error: { kind: "SerializationError", message: `result is not JSON: ${e?.message ?? e}` },
    });
  }
  writeAll(PROTOCOL_OUT, line + "\n");
}

function fail(id, e) {
  send({ type: "response", id, success: false, error: errorBody(e) });
}

/** Runs one request; returns a promise only when the handler is asynchronous. */
function request(msg) {
  const id = msg.id;
  if (handler === null) {
    return send({ type: "response", id, success: false, error: { kind: "NotInitialized", message: "request before init" } });
  }
  let result;
  try {
    result = handler(msg.payload, new Context(id, msg.context ?? {}));
  } catch (e) {
    return fail(id, e);
  }
  if (result !== null && typeof result === "object" && typeof result.then === "function") {
    return Promise.resolve(result).then(
      (r) => respond(id, r),
      (e) => fail(id, e),
    );
  }
  respond(id, result);
}

function dispatch(line) {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    return note(`ignoring unreadable protocol line (${e.message})`);
  }
  switch (msg?.type) {
    case "request":
      return request(msg);
    case "ping":
      return send({ type: "pong", id: msg.id });
    case "init":
      return init(msg);
    case "shutdown":
      process.exit(0);
    // anything else comes from a newer supervisor: ignored (PROTOCOL.md §3)
  }
}

// === input: split lines ourselves, handle them strictly one at a time ===

const queue = [];
let parts = [];
let busy = false;

// Synchronous unless a message needs the event loop (an async handler, init's import), so a
// warm synchronous request costs no promise turns.
function pump() {
  if (busy) return;
  busy = true;
  while (queue.length > 0) {
    const line = queue.shift();
    if (line === null) process.exit(0); // EOF: the supervisor is gone
    if (line.length === 0 || line === "\r") continue;
    const pending = dispatch(line);
    if (pending) {
      pending.then(() => {
        busy = false;
        pump();
      });
      return;
    }
  }
  busy = false;
}

process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  let start = 0;
  let nl;
  while ((nl = chunk.indexOf("\n", start)) !== -1) {
    parts.push(chunk.slice(start, nl));
    queue.push(parts.length === 1 ? parts[0] : parts.join(""));
    parts = [];
    start = nl + 1;
  }
  if (start < chunk.length) parts.push(chunk.slice(start));
  pump();
});
process.stdin.on("end", () => {
  queue.push(null);
  pump();
});
