// Drives headless Chromium for server/tests/browser_e2e.rs: one command per stdin line, one
// answer per stdout line ("ok ..." or "error ..."), so the Rust test stays in charge.
//
//   open URL          load the page
//   status PREFIX     wait until #status reads PREFIX...
//   see TEXT          wait until a message in #messages contains TEXT
//   count             print how many messages the page shows
//   events            the demo's connection events, JSON: [[status, text], ...]
//   text ID           the text of the element #ID, JSON-encoded (one line)
//   eval EXPR         evaluate EXPR in the page (a Promise is awaited); JSON of the result
//   until EXPR        wait until EXPR is truthy in the page
//   screenshot PATH   save a PNG of the page
//   quit
import { chromium } from 'playwright-core';
import readline from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const WAIT_MS = 20000;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushman-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1000, height: 760 },
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-quic',
         // More flags from the test, e.g. --ignore-certificate-errors-spki-list=HASH.
         ...(process.env.CHROMIUM_EXTRA_ARGS || '').split(' ').filter(Boolean)],
});
const page = context.pages()[0] || await context.newPage();
page.on('console', (msg) => process.stderr.write(`[page] ${msg.text()}\n`));

const commands = {
  async open(url) { await page.goto(url); return 'loaded'; },
  async status(prefix) {
    await page.waitForFunction((p) => document.querySelector('#status').textContent.startsWith(p), prefix, { timeout: WAIT_MS });
    return await page.textContent('#status');
  },
  async see(text) {
    await page.waitForFunction((t) => [...document.querySelectorAll('#messages li')].some((li) => li.textContent.includes(t)), text, { timeout: WAIT_MS });
    return text;
  },
  async count() { return String(await page.locator('#messages li').count()); },
  async events() {
    return JSON.stringify(await page.$$eval('#events li', (lis) => lis.map((li) => [li.dataset.status, li.textContent])));
  },
  async text(id) { return JSON.stringify(await page.evaluate((i) => document.getElementById(i).textContent, id)); },
  async eval(expr) { return JSON.stringify(await page.evaluate(expr)) ?? 'undefined'; },
  async until(expr) { await page.waitForFunction(expr, null, { timeout: WAIT_MS }); return 'true'; },
  async screenshot(file) { await page.screenshot({ path: file, fullPage: true }); return file; },
};

console.log('ready');
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const space = line.indexOf(' ');
  const [name, arg] = space < 0 ? [line, ''] : [line.slice(0, space), line.slice(space + 1)];
  if (name === 'quit') break;
  try {
    if (!commands[name]) throw new Error(`unknown command ${name}`);
    console.log(`ok ${await commands[name](arg)}`);
  } catch (e) {
    console.log(`error ${String(e.message || e).split('\n')[0]}`);
  }
}
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
