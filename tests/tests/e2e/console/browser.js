// Drives the console in headless Chromium (Debian's) with playwright-core, for
// tests/tests/e2e/console_browser.rs, through what a person does: log in with the token URL;
// list, filter, disable and enable scripts; create a Python script from its template; type a
// syntax error and see the checker's diagnostic at its line (a daemon without POST /v1/check
// gets a "checker unavailable" note, recorded for the test to judge); pyright's completions;
// fix it, format it, register it and watch its prepare finish; run it through the generated form and watch its
// output arrive before its result; find it in the history; register a second version, diff the
// two and roll `latest` back; watch the pools page; then the gateway's refusals (a second tab
// with the used token, no cookie, a foreign Host, a cross-origin POST). Saves a screenshot of
// each page and prints one JSON summary line on stdout.
//
// argv: playwright-core's directory, the console URL, the screenshot directory, the name of a
// registered script (a bash ticker).
"use strict";

const http = require("node:http");
const path = require("node:path");

const [playwrightDir, url, shots, ticker] = process.argv.slice(2);
const { chromium } = require(playwrightDir);

const WAIT = 90_000;
const NAME = "greeter";

function raw(method, target, headers, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(target);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, headers }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode, body: text }));
    });
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

async function main() {
  const summary = { console: [], pageErrors: [], failedRequests: [], badResponses: [], steps: [] };
  const step = (s) => summary.steps.push(s);
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"], headless: true });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on("console", (m) => summary.console.push(`${m.type()}: ${m.text()} (${m.location().url})`));
    page.on("pageerror", (e) => summary.pageErrors.push(String(e)));
    page.on("requestfailed", (r) =>
      summary.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure() && r.failure().errorText}`));
    page.on("response", (r) => {
      if (r.status() >= 400) summary.badResponses.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
    });
    const shot = async (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
    const status = () => page.locator("#status").textContent();

    // Load: the token URL, then the page without it; the time to the first rendered view.
    const t0 = Date.now();
    const first = await page.goto(url, { waitUntil: "load" });
    summary.loadMs = Date.now() - t0;
    summary.landing = { status: first ? first.status() : null, url: page.url() };
    summary.title = await page.title();
    await page.getByRole("link", { name: ticker, exact: true }).waitFor();
    summary.firstRenderMs = await page.evaluate(() => {
      const m = performance.getEntriesByName("console-first-render")[0];
      return m ? Math.round(m.startTime) : null;
    });
    // Keyboard: a view takes the focus to its heading; Tab goes on to its first control, and
    // back past it to the navigation.
    const focused = () => page.evaluate(() => {
      const e = document.activeElement;
      return `${e.tagName.toLowerCase()}: ${e.labels && e.labels[0] ? e.labels[0].textContent : e.textContent}`;
    });
    summary.focusOnLoad = await focused();
    await page.keyboard.press("Tab");
    summary.firstTab = await focused();
    await page.keyboard.press("Shift+Tab");
    summary.backTab = await focused();
    summary.resources = await page.evaluate(() =>
      performance.getEntriesByType("resource").map((r) => ({ name: new URL(r.name).pathname, bytes: r.encodedBodySize })));
    step("scripts");

    // Scripts: filter (asks the daemon), disable and enable.
    const search = page.getByLabel("Search");
    await search.fill("no-such-script");
    await page.getByText("No script matches.").waitFor();
    await search.fill(ticker.slice(0, 3));
    await page.getByRole("link", { name: ticker, exact: true }).waitFor();
    await page.getByRole("button", { name: `Disable ${ticker}` }).click();
    await page.getByRole("button", { name: `Enable ${ticker}` }).waitFor();
    summary.disabledState = await page.locator("#script-list tbody tr td:nth-child(5)").first().textContent();
    await page.getByRole("button", { name: `Enable ${ticker}` }).click();
    await page.getByRole("button", { name: `Disable ${ticker}` }).waitFor();
    await search.fill("");
    await shot("scripts");

    // New script from the Python template: the editor opens it with Monaco.
    await page.getByLabel("New script's name").fill(NAME);
    await page.getByLabel("Template").selectOption("python3");
    await page.getByRole("button", { name: "Create from template" }).click();
    await page.locator(".monaco-host .view-lines").waitFor();
    await page.waitForFunction(() => document.querySelector("main").dataset.ready === "1");
    step("editor");
    summary.editorFiles = await page.locator(".tree button.file").allTextContents();
    summary.checkAvailable = await page.evaluate(async () => {
      const doc = await (await fetch("/api/v1/openapi.json")).json();
      return { check: "/v1/check" in doc.paths, format: "/v1/format" in doc.paths };
    });
    const editorArea = page.locator(".monaco-host .view-lines");
    if (summary.checkAvailable.check) {
      // A syntax error on the file's last line (11): the checker marks that line.
      await editorArea.click();
      await page.keyboard.press("Control+End");
      await page.keyboard.type("x = = 1");
      await page.locator(".problems li.error").first().waitFor();
      summary.diagnostic = {
        line: await page.locator(".problems li.error").first().getAttribute("data-line"),
        text: await page.locator(".problems li.error").first().textContent(),
        markers: await page.locator(".monaco-host .squiggly-error").count(),
      };
      await shot("editor-diagnostic");
      // Fixed: the line goes, and so does the diagnostic.
      await page.keyboard.press("Home");
      await page.keyboard.press("Shift+End");
      await page.keyboard.press("Delete");
      await page.waitForFunction(() => document.querySelectorAll(".problems li.error").length === 0);
      summary.diagnosticCleared = true;
    } else {
      summary.checkerNote = await page.locator(".notes .note.warn").first().textContent();
    }
    summary.lspNote = await page.locator(".lsp").textContent();
    if (await page.evaluate(async () => (await (await fetch("/features.json")).json()).lsp.includes("python"))) {
      // Completions from the language server: the members of `sys`.
      await page.waitForFunction(() => /connected/.test(document.querySelector(".lsp").textContent));
      await editorArea.click();
      await page.keyboard.press("Control+End");
      await page.keyboard.type("sys.");
      await page.locator(".suggest-widget .monaco-list-row", { hasText: "argv" }).first().waitFor();
      summary.completion = "argv";
      await page.keyboard.press("Escape");
      for (let i = 0; i < 4; i++) await page.keyboard.press("Backspace");
    }
    if (summary.checkAvailable.format) {
      await page.getByRole("button", { name: "Format" }).click();
      await page.waitForFunction(() => /formatted/.test(document.getElementById("status").textContent));
      summary.formatStatus = await status();
    } else {
      summary.formatDisabled = await page.getByRole("button", { name: "Format" }).isDisabled();
    }

    // The manifest is checked against its schema from the daemon's OpenAPI document: a field it
    // does not know is marked; then the line is put back.
    await page.getByRole("button", { name: "runwarm.json (manifest)" }).click();
    await editorArea.click();
    await page.keyboard.press("Control+Home");
    await page.keyboard.press("End");
    const bogus = ' "bogus": 1,';
    await page.keyboard.type(bogus);
    await page.locator(".monaco-host .squiggly-warning, .monaco-host .squiggly-error").first().waitFor();
    summary.manifestMarkers = await page.evaluate(() =>
      document.querySelectorAll(".monaco-host .squiggly-warning, .monaco-host .squiggly-error").length);
    // ... and listed with the checkers' diagnostics, at its line. The field is typed key by key,
    // so the list may first hold a syntax complaint about a half-typed line: wait for the one
    // about the field itself.
    await page.waitForFunction(() =>
      [...document.querySelectorAll(".problems li")].some((li) =>
        li.textContent.startsWith("runwarm.json:1:") && li.textContent.includes("bogus")));
    summary.manifestProblem = await page.evaluate(() =>
      [...document.querySelectorAll(".problems li")].map((li) => li.textContent).find((t) => t.includes("bogus")));
    // Taken back key by key (typing `{` again would be auto-closed to `{}`).
    await page.keyboard.press("End");
    for (let i = 0; i < bogus.length; i++) await page.keyboard.press("Backspace");
    await page.waitForFunction(() => !document.querySelector(".monaco-host .squiggly-warning, .monaco-host .squiggly-error"));
    await page.waitForFunction(() =>
      ![...document.querySelectorAll(".problems li")].some((li) => li.textContent.startsWith("runwarm.json:")));
    await page.getByRole("button", { name: "main.py", exact: true }).click();

    // Register: the version, then its prepare followed to the end.
    await page.getByRole("button", { name: "Register" }).click();
    await page.waitForFunction(() => {
      const p = document.querySelector(".register-panel");
      return p && (p.dataset.prepare || p.querySelector(".problem"));
    });
    summary.register = {
      prepare: await page.locator(".register-panel").getAttribute("data-prepare"),
      version: await page.locator(".register-panel").getAttribute("data-version"),
      state: await page.locator(".prepare-state").textContent(),
      problem: await page.locator(".register-panel .problem").allTextContents(),
    };
    await shot("editor");

    // Run through the generated form: output noted the moment its first line shows.
    await page.evaluate((h) => (location.hash = h), `#/run/${NAME}`);
    await page.locator('input[name="name"]').waitFor();
    step("run");
    summary.formFields = await page.locator(".schema-fields label").allTextContents();
    summary.defaultName = await page.locator('input[name="name"]').inputValue();
    await page.locator('input[name="name"]').fill("Grace");
    await page.locator('input[name="times"]').fill("3");
    await page.evaluate(() => {
      const output = document.querySelector(".output");
      const watch = new MutationObserver(() => {
        if (output.textContent.includes("hello Grace (1)")) {
          window.firstLine = { result: document.querySelector(".run-result").textContent };
          watch.disconnect();
        }
      });
      watch.observe(output, { childList: true, characterData: true, subtree: true });
    });
    await page.getByRole("button", { name: "Invoke" }).click();
    await page.locator(".run-result .record").waitFor();
    summary.firstLine = await page.evaluate(() => window.firstLine || null);
    summary.run = {
      state: await page.locator(".run-result .record").getAttribute("data-state"),
      result: await page.locator(".run-result pre.result").textContent().catch(() => null),
      output: await page.locator(".output").textContent(),
      streams: await page.locator(".output .line").evaluateAll((ls) => ls.map((l) => l.dataset.stream)),
      figures: await page.locator(".run-result dl.figures").textContent(),
      coloured: await page.locator(".output .stderr .ansi-fg33").allTextContents(),
      log: await page.locator(".output .log").allTextContents(),
    };
    await shot("run");

    // A parameter the schema refuses is stopped in the page.
    await page.locator('input[name="times"]').fill("9");
    await page.getByRole("button", { name: "Invoke" }).click();
    summary.badParamStatus = await status();

    // The daemon's refusal, shown with its code and the schema violation: the raw JSON editor
    // sends what the form would not.
    await page.getByLabel("Edit as raw JSON").check();
    await page.getByLabel("Payload (JSON)").fill(JSON.stringify({ name: 5 }));
    await page.getByRole("button", { name: "Invoke" }).click();
    await page.locator(".run-result .problem").waitFor();
    summary.refusal = await page.locator(".run-result .problem").textContent();
    await shot("run-refused");
    // Synchronous: the answer when it ends, the output replayed after it.
    await page.getByLabel("Payload (JSON)").fill(JSON.stringify({ name: "Sync", times: 1 }));
    await page.getByLabel("sync, wait for the answer").check();
    await page.getByRole("button", { name: "Invoke" }).click();
    await page.locator(".run-result .record").waitFor();
    await page.waitForFunction(() => document.querySelector(".output").textContent.includes("hello Sync (1)"));
    summary.syncResult = await page.locator(".run-result pre.result").textContent();

    // History: filtered by the script, then the execution's detail.
    await page.evaluate(() => (location.hash = "#/executions"));
    step("executions");
    await page.getByLabel("Script").fill(NAME);
    await page.locator("main table tbody tr").first().waitFor();
    await page.waitForFunction((n) => [...document.querySelectorAll("main tbody tr td:nth-child(2)")].every((t) => t.textContent === n), NAME);
    summary.history = await page.locator("main tbody tr").evaluateAll((rs) =>
      rs.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent)));
    await shot("executions");
    await page.locator("main tbody tr td:first-child a").first().click();
    await page.locator(".record").waitFor();
    await page.waitForFunction(() => document.querySelector(".output").textContent.includes("hello Sync (1)"));
    summary.detailState = await page.locator(".record").getAttribute("data-state");
    summary.detailCancelDisabled = await page.getByRole("button", { name: "Cancel" }).isDisabled();
    await shot("execution-detail");
    // Replay: a new execution of the same payload, its detail shown.
    const replayed = page.url();
    await page.getByRole("button", { name: "Replay" }).click();
    await page.waitForFunction((u) => location.href !== u, replayed);
    await page.waitForFunction(() => {
      const r = document.querySelector(".record");
      return r && r.dataset.state === "completed" && document.querySelector(".output").textContent.includes("(1)");
    });
    summary.replayState = await page.locator(".record").getAttribute("data-state");

    // Cancel: the ticker runs for three seconds; its detail's Cancel stops it.
    const running = await page.evaluate(async (t) => {
      const r = await fetch(`/api/v1/scripts/${t}/invoke`, {
        method: "POST", headers: { "content-type": "application/json", prefer: "respond-async" }, body: JSON.stringify({ name: "Ada", count: 1 }),
      });
      return (await r.json()).id;
    }, ticker);
    await page.evaluate((id) => (location.hash = `#/executions/${id}`), running);
    await page.waitForFunction(() => document.querySelector(".output") && document.querySelector(".output").textContent.includes("tick 1"));
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.waitForFunction(() => {
      const r = document.querySelector(".record");
      return r && r.dataset.state === "cancelled";
    });
    summary.cancelled = await page.locator(".record").getAttribute("data-state");
    summary.cancelledOutput = await page.locator(".output").textContent();

    // TypeScript: Monaco's own worker (a module worker from the console, 7 MB) marks a type
    // error as it is typed.
    await page.evaluate(() => (location.hash = "#/editor/typed"));
    await page.waitForFunction(() => document.querySelector("main").dataset.ready === "1");
    await page.locator(".monaco-host .view-lines").click();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("const n: number = 'not a number';");
    await page.locator(".monaco-host .squiggly-error").first().waitFor();
    summary.typescriptMarkers = await page.locator(".monaco-host .squiggly-error").count();

    // A second version (one more line), then the diff and a rollback of `latest`.
    await page.evaluate((n) => (location.hash = `#/editor/${n}`), NAME);
    await page.waitForFunction(() => document.querySelector("main").dataset.ready === "1");
    await page.locator(".monaco-host .view-lines").click();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("# second version");
    await page.getByRole("button", { name: "Register" }).click();
    await page.waitForFunction(() => document.querySelector(".register-panel").dataset.prepare);
    summary.secondVersion = await page.locator(".register-panel").getAttribute("data-version");
    await page.evaluate((n) => (location.hash = `#/versions/${n}`), NAME);
    step("versions");
    await page.locator(".diff-host .monaco-diff-editor").waitFor();
    await page.locator(".diff-host .line-insert, .diff-host .char-insert").first().waitFor();
    summary.versionRows = await page.locator("main table tbody tr").count();
    summary.diffFile = await page.locator(".diff-host").getAttribute("data-ready");
    await shot("versions");
    const older = summary.register.version.replace(/^sha256:/, "").slice(0, 12);
    await page.getByRole("button", { name: `Make ${older} latest` }).click();
    await page.locator(".confirm").waitFor();
    summary.confirm = await page.locator(".confirm").textContent();
    await shot("versions-confirm");
    await page.getByRole("button", { name: "Move latest" }).click();
    // The view renders again: now the newer version is the one that can be made latest.
    const newer = summary.secondVersion.replace(/^sha256:/, "").slice(0, 12);
    await page.getByRole("button", { name: `Make ${newer} latest` }).waitFor();
    summary.latestAfter = await page.evaluate(async (n) => (await (await fetch(`/api/v1/scripts/${n}`)).json()).tags.latest, NAME);

    // Pools and health: the pool of the script that ran, and the plots after a few scrapes.
    await page.evaluate(() => (location.hash = "#/pools"));
    step("pools");
    await page.getByRole("cell", { name: NAME, exact: true }).waitFor();
    // Some load, spread over a few scrapes, so the rate and latency plots have a shape.
    await page.evaluate((n) => {
      window.load = (async () => {
        for (let i = 0; i < 60; i++) {
          await fetch(`/api/v1/scripts/${n}/invoke`, {
            method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: `load ${i}` }),
          });
          await new Promise((r) => setTimeout(r, 150));
        }
      })();
    }, NAME);
    await page.waitForFunction(() => {
      const [rate, latency] = [...document.querySelectorAll(".plots .legend")].map((l) => l.textContent);
      const points = document.querySelector("svg.plot").querySelectorAll("circle").length;
      return rate && latency && points >= 6 && /all: (?!0\/s)[0-9.]+\/s/.test(rate) && /p50: [0-9.]+ ms/.test(latency);
    });
    summary.legends = await page.locator(".plots .legend").allTextContents();
    summary.plots = await page.locator("svg.plot").count();
    summary.layers = await page.locator("main section:last-of-type tbody tr").count();
    await shot("pools");
    await page.evaluate(() => window.load);

    // Paging through the history, now that it holds more than a page.
    await page.evaluate(() => (location.hash = "#/executions"));
    await page.getByLabel("Script").fill(NAME);
    await page.waitForFunction(() => document.querySelectorAll("main tbody tr").length === 20);
    const firstId = () => page.locator("main tbody tr td:first-child").first().textContent();
    const top = await firstId();
    await page.getByRole("button", { name: "Older" }).click();
    await page.waitForFunction((t) => document.querySelector("main tbody tr td").textContent !== t, top);
    summary.paging = { top, second: await firstId(), status: await status() };
    await page.getByRole("button", { name: "Newer" }).click();
    await page.waitForFunction((t) => document.querySelector("main tbody tr td").textContent === t, top);
    summary.paging.back = await firstId();


    // The gateway's refusals.
    step("refusals");
    const second = await context.newPage();
    const again = await second.goto(url);
    summary.secondTab = { status: again ? again.status() : null };
    await second.close();
    const origin = new URL(url).origin;
    const cookie = (await context.cookies(origin)).map((c) => `${c.name}=${c.value}`).join("; ");
    summary.noCookie = (await raw("GET", `${origin}/api/v1/scripts`, {})).status;
    summary.foreignHost = (await raw("GET", `${origin}/api/v1/scripts`, { host: "evil.example", cookie })).status;
    summary.crossOrigin = (await raw("POST", `${origin}/api/v1/scripts/${NAME}/disable`,
      { cookie, origin: "http://evil.example", "content-type": "application/json" }, "{}")).status;
    summary.sameOriginWithCookie = (await raw("GET", `${origin}/api/v1/scripts`, { cookie })).status;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(summary) + "\n");
}

main().catch((e) => {
  process.stderr.write(`browser driver failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
