// The chat example in a real browser: headless Debian Chromium driven by playwright-core.
//
//   node tests/browser/chat.mjs URL [--ignore-certificate-errors]
//
// Opens URL (the chat page) in two tabs of one browser context, waits until both show
// "connected", sends a line from tab 1 and waits until both tabs list it, then sends one back
// from tab 2 and waits until both list that too. Prints one JSON line on stdout (what each tab
// showed, its status text, the lines sent) and exits 0 only if every step held; otherwise it
// still prints the JSON line (with "ok": false and "error") and exits 1, with the reason on
// stderr. Every wait is bounded (CHAT_WAIT_MS, default 10000 ms, per step) and the browser is
// always closed. --ignore-certificate-errors is for a server with a self-signed certificate.
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = Number(process.env.CHAT_WAIT_MS || 10000);
const LAUNCH_MS = 30000;
// The whole run, as a last resort (a hang in a place no step timeout covers).
const OVERALL_MS = LAUNCH_MS + 12 * WAIT_MS;

function usage(message) {
  console.error(`chat.mjs: ${message}`);
  console.error('usage: node chat.mjs URL [--ignore-certificate-errors]');
  process.exit(2);
}

const args = process.argv.slice(2);
const ignoreCertificateErrors = args.includes('--ignore-certificate-errors');
const positional = args.filter((arg) => !arg.startsWith('--'));
if (positional.length !== 1 || args.length !== positional.length + Number(ignoreCertificateErrors)) {
  usage('expected exactly one URL and no other option');
}
const url = positional[0];
if (!/^https?:\/\//.test(url)) usage(`not an http(s) URL: ${url}`);

const result = { ok: false, url, browser: null, sent: [], tabs: {}, elapsed_ms: null };
const started = Date.now();

// Bounded by OVERALL_MS even if something hangs; Playwright kills the browser on exit.
const watchdog = setTimeout(() => {
  fail(`the whole run took longer than ${OVERALL_MS} ms`);
  process.exit(1);
}, OVERALL_MS);
watchdog.unref();

function fail(message) {
  result.ok = false;
  // Playwright colours its call logs; the report is for logs and JSON, so no escapes.
  result.error = message.replace(/\u001b\[[0-9;]*m/g, '');
  result.elapsed_ms = Date.now() - started;
  console.log(JSON.stringify(result));
  console.error(`chat.mjs: FAILED: ${result.error}`);
}

/** Open the page in a new tab of `context`, keeping its console errors for the report. */
async function openTab(context, label) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('websocket', (ws) => {
    ws.on('socketerror', (error) => errors.push(`websocket ${ws.url()}: ${error}`));
  });
  const response = await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
  if (!response || response.status() !== 200) {
    throw new Error(`${label}: GET ${url} answered ${response ? response.status() : 'nothing'}`);
  }
  return { label, page, errors };
}

/** What a tab shows now: its #status text and the texts of the #messages items. */
async function snapshot(tab) {
  return tab.page.evaluate(() => ({
    status: document.querySelector('#status').textContent,
    messages: Array.from(document.querySelectorAll('#messages li'), (li) => li.textContent),
  }));
}

async function record(tabs) {
  for (const tab of tabs) {
    try {
      result.tabs[tab.label] = { ...(await snapshot(tab)), errors: tab.errors };
    } catch (error) {
      result.tabs[tab.label] = { snapshot_error: String(error), errors: tab.errors };
    }
  }
}

async function waitForStatus(tab, status) {
  try {
    await tab.page.waitForFunction(
      (want) => document.querySelector('#status').textContent === want,
      status,
      { timeout: WAIT_MS },
    );
  } catch (error) {
    const now = await snapshot(tab).catch(() => ({ status: '?' }));
    throw new Error(
      `${tab.label}: #status did not become "${status}" within ${WAIT_MS} ms ` +
        `(it shows "${now.status}"; errors: ${JSON.stringify(tab.errors)})`,
    );
  }
}

/** Wait until `tab`'s #messages holds an item whose text is exactly `line`. */
async function waitForLine(tab, line) {
  try {
    await tab.page.waitForFunction(
      (want) =>
        Array.from(document.querySelectorAll('#messages li')).some((li) => li.textContent === want),
      line,
      { timeout: WAIT_MS },
    );
  } catch (error) {
    const now = await snapshot(tab).catch(() => ({ status: '?', messages: '?' }));
    throw new Error(
      `${tab.label}: #messages did not show ${JSON.stringify(line)} within ${WAIT_MS} ms ` +
        `(it shows ${JSON.stringify(now.messages)}, status "${now.status}")`,
    );
  }
}

/** Type `name` and `text` into `tab`'s form and click Send; return the line all should see. */
async function send(tab, name, text) {
  await tab.page.fill('#name', name, { timeout: WAIT_MS });
  await tab.page.fill('#text', text, { timeout: WAIT_MS });
  await tab.page.click('#send', { timeout: WAIT_MS });
  const line = `${name}: ${text}`;
  result.sent.push({ from: tab.label, line });
  return line;
}

let browser = null;
let tabs = [];
let exitCode = 1;
try {
  const launchArgs = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
  if (ignoreCertificateErrors) launchArgs.push('--ignore-certificate-errors');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: launchArgs,
    timeout: LAUNCH_MS,
  });
  result.browser = browser.version();
  const context = await browser.newContext({ ignoreHTTPSErrors: ignoreCertificateErrors });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);

  tabs = [await openTab(context, 'tab1'), await openTab(context, 'tab2')];
  const [tab1, tab2] = tabs;
  await Promise.all(tabs.map((tab) => waitForStatus(tab, 'connected')));

  // Unique per run, and not plain ASCII: the text goes through JSON, UTF-8 frames and the DOM.
  const unique = `${process.pid}-${started}-${Math.random().toString(36).slice(2, 8)}`;
  const first = await send(tab1, 'ada', `héllo from tab 1 ✓ ${unique}`);
  await Promise.all([waitForLine(tab2, first), waitForLine(tab1, first)]);
  const second = await send(tab2, 'bob', `and back from tab 2 <b>${unique}</b>`);
  await Promise.all([waitForLine(tab1, second), waitForLine(tab2, second)]);

  await record(tabs);
  const expected = JSON.stringify([first, second]);
  const problems = [];
  for (const tab of tabs) {
    const seen = result.tabs[tab.label];
    if (seen.status !== 'connected') problems.push(`${tab.label}: status is "${seen.status}"`);
    if (JSON.stringify(seen.messages) !== expected) {
      problems.push(`${tab.label}: messages ${JSON.stringify(seen.messages)}, want ${expected}`);
    }
  }
  if (problems.length) throw new Error(problems.join('; '));

  result.ok = true;
  result.elapsed_ms = Date.now() - started;
  console.log(JSON.stringify(result));
  exitCode = 0;
} catch (error) {
  if (tabs.length && !Object.keys(result.tabs).length) await record(tabs);
  fail(error && error.message ? error.message : String(error));
} finally {
  if (browser) {
    // Bounded too: a browser that will not close is killed when this process exits.
    await Promise.race([
      browser.close().catch((error) => console.error(`chat.mjs: closing the browser: ${error}`)),
      new Promise((resolve) => setTimeout(resolve, WAIT_MS).unref()),
    ]);
  }
}
clearTimeout(watchdog);
process.exit(exitCode);
