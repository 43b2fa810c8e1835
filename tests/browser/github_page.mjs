// Drives tollgate's `/github` account-linking page in headless Chromium, as a person would.
//
//   node tests/browser/github_page.mjs URL [--screenshots DIR]
//
// Opens URL (the auth helper's /github page, e.g. with ?key=...), waits until the one-time
// code is visible and prints `CODE <code>` on stdout. Whoever runs it then approves that code
// on (a stand-in for) GitHub; the script waits up to 20 s for the page's status text to say
// the account is linked, by itself and without any reload, prints `STATUS <text>` and exits 0.
// On any failure it saves a screenshot to a temporary file, names it on stderr and exits 1.
// With --screenshots DIR it also saves DIR/pending.png (code shown) and DIR/linked.png.
//
// Environment:
//   TOLLGATE_CHROMIUM       the Chromium binary (default /usr/bin/chromium; never downloaded)
//   TOLLGATE_NODE_MODULES   the node_modules holding playwright-core (default <repo>/.tools/node_modules)

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchChromium } from './chromium.mjs';

const CODE_TIMEOUT_MS = 15_000;
const LINKED_TIMEOUT_MS = 20_000;
// A last resort: never outlive the caller's patience, whatever hangs.
const OVERALL_TIMEOUT_MS = 60_000;

function usage(message) {
  console.error(`error: ${message}\nusage: node tests/browser/github_page.mjs URL [--screenshots DIR]`);
  process.exit(2);
}

const args = process.argv.slice(2);
let url;
let screenshots;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--screenshots') {
    screenshots = args[++i];
    if (!screenshots) usage('--screenshots needs a directory');
  } else if (!url) {
    url = args[i];
  } else {
    usage(`unexpected argument ${args[i]}`);
  }
}
if (!url) usage('no URL given');

let browser;
let page;

async function fail(message) {
  let shot = '';
  if (page) {
    try {
      const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-browser-'));
      shot = path.join(dir, 'failure.png');
      await page.screenshot({ path: shot, fullPage: true });
    } catch (e) {
      shot = `(no screenshot: ${e.message})`;
    }
  }
  console.error(`FAIL ${message}`);
  if (shot) console.error(`screenshot: ${shot}`);
  if (page) {
    try {
      const status = await page.locator('#status').innerText({ timeout: 1000 });
      console.error(`status on the page: ${JSON.stringify(status)}`);
    } catch {
      // The page may be gone; the message above says why.
    }
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

const watchdog = setTimeout(() => {
  fail(`gave up after ${OVERALL_TIMEOUT_MS / 1000} s`);
}, OVERALL_TIMEOUT_MS);

browser = await launchChromium();

try {
  page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`console error: ${m.text()}`);
  });

  const response = await page.goto(url, { waitUntil: 'load', timeout: CODE_TIMEOUT_MS });
  if (!response || response.status() !== 200) {
    await fail(`GET ${url} answered ${response ? response.status() : 'nothing'}`);
  }
  // From here on the page must update itself: any navigation of the main frame is a reload.
  let navigations = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations += 1;
  });

  const code = page.locator('#user-code');
  await code.waitFor({ state: 'visible', timeout: CODE_TIMEOUT_MS });
  const userCode = (await code.innerText()).trim();
  if (!/^[A-Z0-9]{4}-[A-Z0-9]{4}$/.test(userCode)) await fail(`unexpected code text ${JSON.stringify(userCode)}`);
  const button = page.getByRole('button', { name: 'Copy code & open GitHub' });
  if (!(await button.isVisible())) await fail('the "Copy code & open GitHub" button is not visible');
  const pending = (await page.locator('#status-text').innerText()).trim();
  if (screenshots) await page.screenshot({ path: path.join(screenshots, 'pending.png'), fullPage: true });
  process.stdout.write(`CODE ${userCode}\nPENDING ${pending}\n`);

  try {
    await page.waitForFunction(
      () => /^Linked\b/.test((document.getElementById('status-text') || {}).textContent || ''),
      null,
      { timeout: LINKED_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    await fail(`the status did not turn to linked within ${LINKED_TIMEOUT_MS / 1000} s`);
  }
  const linked = (await page.locator('#status-text').innerText()).trim();
  const boxClass = await page.locator('#status').getAttribute('class');
  if (!/\blinked\b/.test(boxClass || '')) await fail(`the status box has class ${JSON.stringify(boxClass)}`);
  if (await code.isVisible()) await fail('the code is still shown after linking');
  if (navigations > 0) await fail(`the page navigated ${navigations} time(s) instead of updating in place`);
  if (pageErrors.length > 0) await fail(`script errors on the page: ${pageErrors.join('; ')}`);
  if (screenshots) await page.screenshot({ path: path.join(screenshots, 'linked.png'), fullPage: true });
  process.stdout.write(`STATUS ${linked}\n`);
} catch (e) {
  await fail(e.message);
}

clearTimeout(watchdog);
await browser.close();
process.exit(0);
