// Starts the headless Chromium the browser tests drive, through playwright-core; shared by
// every script in this folder. Nothing is ever downloaded.
//
// Environment:
//   TOLLGATE_CHROMIUM       the Chromium binary (default /usr/bin/chromium)
//   TOLLGATE_NODE_MODULES   the node_modules holding playwright-core (default <repo>/.tools/node_modules)

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.resolve(
  process.env.TOLLGATE_NODE_MODULES || path.join(here, '..', '..', '.tools', 'node_modules'),
);
const executablePath = process.env.TOLLGATE_CHROMIUM || '/usr/bin/chromium';

/** The launched browser; says what is missing and exits 1 when it cannot start. */
export async function launchChromium() {
  let chromium;
  try {
    const require = createRequire(path.join(nodeModules, 'noop.js'));
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    console.error(
      `error: cannot load playwright-core from ${nodeModules} (${e.message}).\n` +
        'Install it with `npm install --prefix .tools playwright-core@<version pinned in scripts/test>`, ' +
        'or set TOLLGATE_NODE_MODULES.',
    );
    process.exit(1);
  }
  try {
    return await chromium.launch({
      executablePath,
      headless: true,
      timeout: 30_000,
      args: [
        '--no-sandbox',
        '--headless',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  } catch (e) {
    console.error(
      `error: cannot start Chromium at ${executablePath}: ${e.message}\n` +
        'Install it with `apt-get install chromium` (Debian), or set TOLLGATE_CHROMIUM.',
    );
    process.exit(1);
  }
}
