// Drives the console page in headless Chromium (Debian's) with playwright-core, for
// tests/tests/e2e/console_browser.rs: log in with the token URL, find the script in the list,
// invoke it through the form, watch its output arrive before its record, then check that a
// second tab opening the same URL is refused. Prints one JSON summary line on stdout.
//
// argv: playwright-core's directory, the console URL, the screenshot path, the script's name.
"use strict";

const [playwrightDir, url, screenshot, script] = process.argv.slice(2);
const { chromium } = require(playwrightDir);

const WAIT = 60_000;

async function main() {
  const summary = { console: [], pageErrors: [], failedRequests: [], badResponses: [] };
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox"],
    headless: true,
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on("console", (m) => summary.console.push(`${m.type()}: ${m.text()} (${m.location().url})`));
    page.on("pageerror", (e) => summary.pageErrors.push(String(e)));
    page.on("requestfailed", (r) =>
      summary.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure() && r.failure().errorText}`));
    page.on("response", (r) => {
      if (r.status() >= 400) summary.badResponses.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
    });

    const t0 = Date.now();
    const first = await page.goto(url, { waitUntil: "load" });
    summary.loadMs = Date.now() - t0;
    summary.landing = { status: first ? first.status() : null, url: page.url() };
    summary.title = await page.title();

    // The list: the script's row appears once the page's fetch of /api/v1/scripts answers.
    const runButton = page.getByRole("button", { name: `Run ${script}` });
    await runButton.waitFor();
    summary.listed = await page.locator("#scripts tr td:first-child").allTextContents();
    summary.statusAfterList = await page.locator("#status").textContent();
    summary.tagsCell = await page.locator("#scripts tr td:nth-child(3)").first().textContent();

    // The filter asks the daemon (`?q=`): nothing matches, then the script is back.
    await page.getByLabel("Filter").fill("no-such-script");
    await page.waitForFunction(() => document.querySelectorAll("#scripts tr").length === 0);
    summary.statusFilteredOut = await page.locator("#status").textContent();
    await page.getByLabel("Filter").fill(script.slice(0, 3));
    await runButton.waitFor();

    // The form: pick the script from its row, type a payload, invoke.
    await runButton.click();
    summary.picked = await page.getByLabel("Script", { exact: true }).inputValue();
    summary.focusAfterPick = await page.evaluate(() => document.activeElement && document.activeElement.id);
    await page.getByLabel("Payload (JSON)").fill(JSON.stringify({ name: "Grace", count: 3 }));
    // Live output: noted in the page the moment the first line shows, so a slow poll from
    // here on a loaded machine cannot miss the moment.
    await page.evaluate(() => {
      const output = document.getElementById("output");
      const watch = new MutationObserver(() => {
        if (output.textContent.includes("tick 1")) {
          window.firstLine = {
            record: document.getElementById("record").textContent,
            status: document.getElementById("status").textContent,
          };
          watch.disconnect();
        }
      });
      watch.observe(output, { childList: true, characterData: true, subtree: true });
    });
    await page.getByRole("button", { name: "Invoke" }).click();
    await page.waitForFunction(() => window.firstLine !== undefined);
    const firstLine = await page.evaluate(() => window.firstLine);
    summary.recordWhenFirstLine = firstLine.record;
    summary.statusWhenFirstLine = firstLine.status;

    await page.waitForFunction(() => document.getElementById("record").textContent.trim() !== "");
    summary.output = await page.locator("#output").textContent();
    summary.recordText = await page.locator("#record").textContent();
    summary.statusAtEnd = await page.locator("#status").textContent();
    summary.statusIsError = await page.locator("#status").evaluate((e) => e.classList.contains("error"));

    // A bad payload is caught in the page, not sent.
    await page.getByLabel("Payload (JSON)").fill("{not json");
    await page.getByRole("button", { name: "Invoke" }).click();
    summary.badPayloadStatus = await page.locator("#status").textContent();
    await page.getByLabel("Payload (JSON)").fill(JSON.stringify({ name: "Grace", count: 3 }));

    await page.screenshot({ path: screenshot, fullPage: true });

    // A second tab with the same URL: the token was used, so 401.
    const second = await context.newPage();
    const again = await second.goto(url);
    summary.secondTab = { status: again ? again.status() : null, body: await second.locator("body").textContent() };
    await second.close();
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(summary) + "\n");
}

main().catch((e) => {
  process.stderr.write(`browser driver failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
