// Walks through tollgate's admin console (/ui) in headless Chromium, as an admin would.
//
//   node tests/browser/console.mjs BASE_URL --username NAME --password PASSWORD \
//        --upstream URL --upstream-key KEY --screenshots DIR [--requests N] [--copilot-account TEXT]...
//        [--mcp-url URL --mcp-token TOKEN]
//
// BASE_URL is tollgate's (http://127.0.0.1:PORT, the API and /ui both under it). The script
// signs in; creates a key with an alias and an rpm limit and checks it is shown only once;
// edits its rpm limit; adds a model pointed at URL (an OpenAI-compatible upstream) with KEY,
// testing the connection first; sends N (default 3) chat requests with the new key to that
// model through the API (node's fetch); finds them on the logs page and opens one; checks
// the dashboard's request total grew by N; opens /ui/copilot if there is one (a 404 skips that
// step with a NOTE; otherwise a row naming one of the TEXTs must be listed); with --mcp-url,
// adds an HTTP MCP server there with the bearer TOKEN on /ui/mcp and opens its page, whose
// tools must be listed and which must not show the token, then hides its `add` tool through the
// edit form (the token kept); looks at the audit and settings pages; signs out and checks /ui/keys sends it back to the sign-in page.
//
// It saves a full-page PNG of every page it visits into DIR (1280x800 viewport, light color
// scheme), printing `SHOT <file>` for each, and prints what it found for the caller to check:
//   KEY <key>  HASH <token hash>  MODEL <name>  API <status>  TOTALS <before> <after>
//   LOG <request id>  COPILOT listed|skipped  MCP <server> <tools listed>  SIGNED_OUT <url>
// then exits 0. On any failure it saves DIR/failure.png, prints `FAIL <why>` on stderr and
// exits 1.
//
// Environment:
//   TOLLGATE_CHROMIUM       the Chromium binary (default /usr/bin/chromium; never downloaded)
//   TOLLGATE_NODE_MODULES   the node_modules holding playwright-core (default <repo>/.tools/node_modules)

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { launchChromium } from './chromium.mjs';

const STEP_TIMEOUT_MS = 15_000;
// How long spend records may take to reach the logs page and the dashboard.
const RECORDED_TIMEOUT_MS = 15_000;
// A last resort: never outlive the caller's patience, whatever hangs.
const OVERALL_TIMEOUT_MS = 100_000;

function usage(message) {
  console.error(
    `error: ${message}\nusage: node tests/browser/console.mjs BASE_URL --username NAME --password PASSWORD ` +
      '--upstream URL --upstream-key KEY --screenshots DIR [--requests N] [--copilot-account TEXT]... ' +
      '[--mcp-url URL --mcp-token TOKEN]',
  );
  process.exit(2);
}

const opts = { copilotAccounts: [], requests: 3 };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const flag = args[i];
  const value = () => {
    const v = args[++i];
    if (v === undefined) usage(`${flag} needs a value`);
    return v;
  };
  switch (flag) {
    case '--username': opts.username = value(); break;
    case '--password': opts.password = value(); break;
    case '--upstream': opts.upstream = value(); break;
    case '--upstream-key': opts.upstreamKey = value(); break;
    case '--screenshots': opts.screenshots = value(); break;
    case '--requests': opts.requests = Number(value()); break;
    case '--copilot-account': opts.copilotAccounts.push(value()); break;
    case '--mcp-url': opts.mcpUrl = value(); break;
    case '--mcp-token': opts.mcpToken = value(); break;
    default:
      if (flag.startsWith('--') || opts.base) usage(`unexpected argument ${flag}`);
      opts.base = flag.replace(/\/+$/, '');
  }
}
for (const [k, name] of [['base', 'BASE_URL'], ['username', '--username'], ['password', '--password'],
  ['upstream', '--upstream'], ['upstreamKey', '--upstream-key'], ['screenshots', '--screenshots']]) {
  if (!opts[k]) usage(`no ${name} given`);
}
if (Boolean(opts.mcpUrl) !== Boolean(opts.mcpToken)) usage('--mcp-url and --mcp-token go together');
if (!Number.isInteger(opts.requests) || opts.requests < 1) usage('--requests must be a positive integer');
mkdirSync(opts.screenshots, { recursive: true });

let browser;
let page;
let step = 'starting';

async function fail(message) {
  let shot = '';
  if (page) {
    try {
      shot = path.join(opts.screenshots, 'failure.png');
      await page.screenshot({ path: shot, fullPage: true });
    } catch (e) {
      shot = `(no screenshot: ${e.message})`;
    }
  }
  console.error(`FAIL [${step}] ${message}`);
  if (page) console.error(`page: ${page.url()}`);
  if (shot) console.error(`screenshot: ${shot}`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

const watchdog = setTimeout(() => {
  fail(`gave up after ${OVERALL_TIMEOUT_MS / 1000} s`);
}, OVERALL_TIMEOUT_MS);

const ui = (p) => `${opts.base}/ui${p}`;

/** Saves a full-page screenshot of what is shown now as DIR/<name>.png. */
async function shot(name) {
  const file = `${name}.png`;
  await page.screenshot({ path: path.join(opts.screenshots, file), fullPage: true });
  process.stdout.write(`SHOT ${file}\n`);
}

/** Opens `url`, expecting `status` (after redirects); returns the response. */
async function visit(url, status = 200) {
  const response = await page.goto(url, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
  check(response, `GET ${url} answered nothing`);
  if (status !== null) check(response.status() === status, `GET ${url} answered ${response.status()}, not ${status}`);
  return response;
}

/** Clicks `button` and waits for the page it leads to; checks its status (after redirects). */
async function submit(button, status = 200) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load', timeout: STEP_TIMEOUT_MS }),
    button.click({ timeout: STEP_TIMEOUT_MS }),
  ]);
  check(response, 'the form led nowhere');
  check(response.status() === status, `the form's answer was ${response.status()}, not ${status}`);
  return response;
}

async function text(selector) {
  return (await page.locator(selector).innerText({ timeout: STEP_TIMEOUT_MS })).trim();
}

async function totalRequests() {
  const n = Number((await text('#total-requests')).replace(/[^0-9]/g, ''));
  check(Number.isFinite(n), 'the dashboard shows no request total');
  return n;
}

/** Reloads until `ready()` holds, up to RECORDED_TIMEOUT_MS; returns its last value. */
async function reloadUntil(ready, what) {
  const deadline = Date.now() + RECORDED_TIMEOUT_MS;
  for (;;) {
    const value = await ready();
    if (value) return value;
    check(Date.now() < deadline, `${what} within ${RECORDED_TIMEOUT_MS / 1000} s`);
    await page.waitForTimeout(250);
    await page.reload({ waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
  }
}

browser = await launchChromium();

try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
  });
  page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`console error: ${m.text()}`);
  });
  // The console asks before deleting or regenerating; nothing here should ask.
  page.on('dialog', (d) => {
    pageErrors.push(`unexpected dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });

  step = 'sign in';
  await visit(ui('/'));
  check(new URL(page.url()).pathname === '/ui/login', `/ui/ without a session went to ${page.url()}`);
  await shot('01-sign-in');
  await page.fill('#username', opts.username);
  await page.fill('#password', opts.password);
  await submit(page.getByRole('button', { name: 'Sign in' }));
  check(new URL(page.url()).pathname === '/ui/', `signing in led to ${page.url()}, not the dashboard`);
  const before = await totalRequests();
  await shot('02-dashboard-before');

  step = 'create a key';
  await visit(ui('/keys'));
  await shot('03-keys');
  const form = page.locator('form#new-key');
  await form.locator('[name=key_alias]').fill('e2e-console-key');
  await form.locator('[name=rpm_limit]').fill('60');
  await submit(form.getByRole('button', { name: 'Create key' }));
  const key = await text('#new-key-value');
  check(/^sk-\S{20,}$/.test(key), `the created key looks like ${JSON.stringify(key)}`);
  const keyHref = await page.getByRole('link', { name: 'Go to the key' }).getAttribute('href');
  const hash = (keyHref || '').split('/').pop();
  check(hash, 'the created page links to no key page');
  await shot('04-key-created');
  process.stdout.write(`KEY ${key}\nHASH ${hash}\n`);

  step = 'the key is shown once';
  await visit(ui('/keys'));
  check((await page.content()).includes('e2e-console-key'), 'the keys list does not show the new alias');
  check(!(await page.content()).includes(key), 'the keys list shows the key itself');
  await page.reload({ waitUntil: 'load' });
  check(!(await page.content()).includes(key), 'the reloaded keys list shows the key itself');
  await shot('05-keys-after');
  await visit(ui(`/keys/${hash}`));
  check(!(await page.content()).includes(key), 'the key page shows the key itself');
  const edit = page.locator('form#edit-key');
  check((await edit.locator('[name=rpm_limit]').inputValue()) === '60', 'the key page shows another rpm limit');

  step = 'edit its rpm limit';
  await edit.locator('[name=rpm_limit]').fill('120');
  await submit(edit.getByRole('button', { name: 'Save' }));
  check(new URL(page.url()).pathname === `/ui/keys/${hash}`, `saving led to ${page.url()}`);
  check((await text('[role=status]')).includes('Key updated'), 'no "Key updated" notice');
  check(
    (await page.locator('form#edit-key [name=rpm_limit]').inputValue()) === '120',
    'the saved rpm limit is not shown',
  );
  check(!(await page.content()).includes(key), 'the key page shows the key itself after saving');
  await shot('06-key');

  step = 'add a model';
  const modelName = 'e2e-console-model';
  await visit(ui('/models'));
  const fillModel = async () => {
    const m = page.locator('form#new-model');
    await m.locator('[name=model_name]').fill(modelName);
    await m.locator('[name=model]').fill('openai/gpt-4o-mini');
    await m.locator('[name=api_base]').fill(opts.upstream);
    // A password field: never sent back, so typed again for each submission.
    await m.locator('[name=api_key]').fill(opts.upstreamKey);
    return m;
  };
  let m = await fillModel();
  await submit(m.getByRole('button', { name: 'Test connection' }));
  const tested = await text('#test-result');
  check(tested.startsWith('Connection works'), `the connection test says ${JSON.stringify(tested)}`);
  check(!(await page.content()).includes(opts.upstreamKey), 'the tested page shows the upstream key');
  await shot('07-model-tested');
  m = await fillModel();
  await submit(m.getByRole('button', { name: 'Add model' }));
  check(new URL(page.url()).pathname === '/ui/models', `adding the model led to ${page.url()}`);
  const row = page.locator('tr', { hasText: modelName });
  check((await row.count()) === 1, `the models list has ${await row.count()} rows for ${modelName}`);
  check((await row.innerText()).includes('stored'), 'the new model is not marked stored');
  check(!(await page.content()).includes(opts.upstreamKey), 'the models list shows the upstream key');
  await shot('08-models');
  process.stdout.write(`MODEL ${modelName}\n`);

  step = 'requests through the API';
  for (let i = 0; i < opts.requests; i++) {
    const response = await fetch(`${opts.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: modelName, messages: [{ role: 'user', content: `hello ${i}` }] }),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const body = await response.text();
    check(response.status === 200, `request ${i} answered ${response.status}: ${body}`);
    check(JSON.parse(body).choices?.length > 0, `request ${i} has no choices: ${body}`);
    process.stdout.write(`API ${response.status}\n`);
  }

  step = 'the logs page';
  await visit(ui('/logs'));
  const logRows = page.locator('tbody tr', { hasText: modelName });
  await reloadUntil(async () => (await logRows.count()) >= opts.requests, `${opts.requests} requests did not reach the logs page`);
  check((await logRows.count()) === opts.requests, `the logs page lists ${await logRows.count()} requests`);
  check((await logRows.first().innerText()).includes('e2e-console-key'), 'the log rows do not name the key');
  await shot('09-logs');
  const link = logRows.first().locator('a').first();
  const logHref = await link.getAttribute('href');
  await submit(link);
  const requestId = decodeURIComponent((logHref || '').split('/').pop());
  check(new URL(page.url()).pathname === `/ui/logs/${encodeURIComponent(requestId)}`, `the log link led to ${page.url()}`);
  check((await text('h1')).includes(requestId), 'the log page is not about that request');
  check((await page.content()).includes(modelName), 'the log page does not name the model');
  check(await page.getByRole('heading', { name: 'Attempts' }).isVisible(), 'the log page shows no attempts');
  await shot('10-log');
  process.stdout.write(`LOG ${requestId}\n`);

  step = 'the dashboard';
  await visit(ui('/'));
  const after = await reloadUntil(async () => {
    const n = await totalRequests();
    return n >= before + opts.requests ? n : 0;
  }, `the dashboard's request total did not grow by ${opts.requests} from ${before}`);
  check(after === before + opts.requests, `the request total went from ${before} to ${after}`);
  check((await page.locator('svg').count()) >= 2, 'the dashboard has no charts');
  await shot('11-dashboard');
  process.stdout.write(`TOTALS ${before} ${after}\n`);

  step = 'the Copilot page';
  const copilot = await visit(ui('/copilot'), null);
  if (copilot.status() === 404) {
    process.stdout.write('NOTE /ui/copilot answered 404: no Copilot page yet, step skipped\n');
    process.stdout.write('COPILOT skipped\n');
  } else {
    check(copilot.status() === 200, `GET /ui/copilot answered ${copilot.status()}`);
    const listed = [];
    for (const account of opts.copilotAccounts) {
      if ((await page.locator('tr, li', { hasText: account }).count()) > 0) listed.push(account);
    }
    check(
      opts.copilotAccounts.length === 0 || listed.length > 0,
      `the Copilot page lists none of ${JSON.stringify(opts.copilotAccounts)}`,
    );
    await shot('12-copilot');
    process.stdout.write(`COPILOT listed ${listed.join(' ')}\n`);
  }

  if (opts.mcpUrl) {
    step = 'add an MCP server';
    const mcpName = 'e2e_docs';
    await visit(ui('/mcp'));
    const f = page.locator('form#new-mcp-server');
    await f.locator('[name=server_name]').fill(mcpName);
    await f.locator('[name=transport]').selectOption('http');
    await f.locator('[name=url]').fill(opts.mcpUrl);
    await f.locator('[name=description]').fill('docs for the e2e walk-through');
    await f.locator('[name=bearer_token]').fill(opts.mcpToken);
    await submit(f.getByRole('button', { name: 'Add MCP server' }));
    check(new URL(page.url()).pathname === '/ui/mcp', `adding the MCP server led to ${page.url()}`);
    const mcpRow = page.locator('#mcp-servers tr', { hasText: mcpName });
    check((await mcpRow.count()) === 1, `the MCP servers list has ${await mcpRow.count()} rows for ${mcpName}`);
    check((await mcpRow.innerText()).includes('stored'), 'the new MCP server is not marked stored');
    check(!(await page.content()).includes(opts.mcpToken), 'the MCP servers list shows the token');
    await shot('16-mcp');

    step = 'an MCP server and its tools';
    await submit(mcpRow.getByRole('link', { name: mcpName }));
    check(new URL(page.url()).pathname === `/ui/mcp/${mcpName}`, `the server link led to ${page.url()}`);
    const tools = page.locator('#mcp-tools tbody tr', { hasText: 'offered' });
    const listed = await tools.count();
    check(listed > 0, 'the MCP server page lists no offered tools');
    check((await page.locator('#mcp-server-facts').innerText()).includes('set'), 'the token is not shown as set');
    check(!(await page.content()).includes(opts.mcpToken), 'the MCP server page shows the token');
    await shot('17-mcp-server');

    step = 'edit the MCP server';
    const edit = page.locator('form#edit-mcp-server');
    check((await edit.locator('[name=url]').inputValue()) === opts.mcpUrl, 'the edit form does not hold the URL');
    check((await edit.locator('[name=bearer_token]').inputValue()) === '', 'the edit form holds a token');
    await edit.locator('[name=description]').fill('edited in the browser');
    await edit.locator('[name=disallowed_tools]').fill('add');
    await submit(edit.getByRole('button', { name: 'Save' }));
    check(new URL(page.url()).pathname === `/ui/mcp/${mcpName}`, `saving the MCP server led to ${page.url()}`);
    check((await page.content()).includes(`MCP server ${mcpName} saved.`), 'saving the MCP server says nothing');
    const hidden = await page.locator('#mcp-tools tbody tr', { hasText: 'hidden by filters' }).count();
    check(hidden === 1, `${hidden} tools shown hidden after hiding one`);
    check(!(await page.content()).includes(opts.mcpToken), 'the edited MCP server page shows the token');
    process.stdout.write(`MCP ${mcpName} ${listed}\n`);
  }

  step = 'audit and settings';
  await visit(ui('/audit'));
  check((await page.content()).includes('e2e-console-key') || (await page.content()).includes(hash),
    'the audit log does not mention the new key');
  check(!(await page.content()).includes(key), 'the audit log shows the key itself');
  await shot('13-audit');
  await visit(ui('/settings'));
  check(!(await page.content()).includes(opts.password), 'the settings page shows the password');
  await shot('14-settings');

  step = 'sign out';
  await submit(page.getByRole('button', { name: 'Sign out' }));
  check(new URL(page.url()).pathname === '/ui/login', `signing out led to ${page.url()}`);
  await visit(ui('/keys'));
  const out = new URL(page.url());
  check(out.pathname === '/ui/login', `/ui/keys after signing out went to ${page.url()}`);
  check(await page.locator('#password').isVisible(), 'the sign-in page has no password field');
  await shot('15-signed-out');
  process.stdout.write(`SIGNED_OUT ${out.pathname}${out.search}\n`);

  check(pageErrors.length === 0, `script errors on the pages: ${pageErrors.join('; ')}`);
} catch (e) {
  await fail(e.message);
}

clearTimeout(watchdog);
await browser.close();
process.exit(0);
