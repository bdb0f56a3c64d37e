// Drives the console from its own page in headless Chromium, as the editor will: after the
// token login, the page (under the console's Content-Security-Policy, sending the Origin a
// browser sends) opens the /lsp/python WebSocket and gets pyright's initialize answer and the
// diagnostics of a file it opens, and calls /api/v1/check and /api/v1/format through the
// console. Prints one JSON summary line on stdout. For tests/tests/e2e/console_browser.rs.
//
// argv: playwright-core's directory, the console URL.
"use strict";

const [playwrightDir, url] = process.argv.slice(2);
const { chromium } = require(playwrightDir);

async function main() {
  const summary = { console: [], pageErrors: [] };
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox"],
    headless: true,
  });
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(90_000);
    page.on("console", (m) => summary.console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => summary.pageErrors.push(String(e)));
    await page.goto(url, { waitUntil: "load" });
    // Runs in the page: the same calls the editor makes.
    const inPage = await page.evaluate(async () => {
      const out = {};
      const post = async (path, body) => {
        const r = await fetch(path, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        return { status: r.status, body: await r.json() };
      };
      out.check = await post("/api/v1/check", {
        runtime: "python3",
        files: { "main.py": "import os\n\ndef f(:\n    pass\n" },
      });
      out.format = await post("/api/v1/format", {
        runtime: "python3", path: "main.py", content: "x=( 1,\n2)\n",
      });
      const uri = "file:///workspace/main.py";
      out.lsp = await new Promise((resolve) => {
        const got = { opened: false, messages: 0 };
        const ws = new WebSocket(`ws://${location.host}/lsp/python`);
        const done = (why) => { got.end = why; ws.close(); resolve(got); };
        const timer = setTimeout(() => done("timeout"), 80_000);
        const send = (m) => ws.send(JSON.stringify({ jsonrpc: "2.0", ...m }));
        ws.onopen = () => {
          got.opened = true;
          send({ id: 1, method: "initialize", params: { processId: null, rootUri: null, capabilities: {} } });
        };
        ws.onerror = () => { clearTimeout(timer); done("error"); };
        ws.onclose = (e) => { got.closeCode = e.code; };
        ws.onmessage = (e) => {
          got.messages += 1;
          const m = JSON.parse(e.data);
          if (m.id !== undefined && m.method) send({ id: m.id, result: null });
          if (m.id === 1) {
            got.initialized = Boolean(m.result && m.result.capabilities);
            send({ method: "initialized", params: {} });
            send({ method: "textDocument/didOpen", params: { textDocument: {
              uri, languageId: "python", version: 1, text: "print(undefined_name)\n" } } });
          }
          if (m.method === "textDocument/publishDiagnostics" && m.params.uri === uri
              && m.params.diagnostics.length > 0) {
            got.diagnostic = m.params.diagnostics[0];
            clearTimeout(timer);
            done("diagnostics");
          }
        };
      });
      return out;
    });
    Object.assign(summary, inPage);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(summary) + "\n");
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
