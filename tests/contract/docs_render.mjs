// Opens the interactive documentation (/docs/) in Debian's headless Chromium, driven by
// playwright-core, and checks that Swagger UI rendered the operations from the server alone:
//   - an operation block (.opblock) exists, and the block of get_coverage with its summary;
//   - every request the page made went to 127.0.0.1 (or was a data:/blob: URL);
//   - no Content-Security-Policy violation and no page error.
// Saves a screenshot. Usage: node docs_render.mjs BASE_URL SCREENSHOT_PATH
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [baseUrl, screenshotPath] = process.argv.slice(2);
if (!baseUrl || !screenshotPath) {
  console.error('usage: node docs_render.mjs BASE_URL SCREENSHOT_PATH');
  process.exit(2);
}
const documentPath = process.env.OPENAPI_DOCUMENT;
const allowedHost = new URL(baseUrl).hostname;
const problems = [];
const requests = [];
const consoleErrors = [];

// The operation to look for, with its summary from the committed document.
let operationId = 'get_coverage';
let operationTag = 'coverage';
let operationSummary = '';
if (documentPath) {
  const document = JSON.parse(readFileSync(documentPath, 'utf8'));
  for (const item of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(item)) {
      if (operation?.operationId === operationId) {
        operationSummary = operation.summary ?? '';
        operationTag = operation.tags?.[0] ?? operationTag;
      }
    }
  }
}

const userDataDir = mkdtempSync(join(tmpdir(), 'catalogue-docs-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
  });
  context.on('request', (request) => {
    const url = new URL(request.url());
    requests.push(`${request.method()} ${request.url()}`);
    const local = ['data:', 'blob:', 'about:'].includes(url.protocol) || url.hostname === allowedHost;
    if (!local) problems.push(`request to another host: ${request.method()} ${request.url()}`);
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    consoleErrors.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });

  const response = await page.goto(`${baseUrl}/docs/`, { waitUntil: 'load', timeout: 30_000 });
  if (!response || response.status() !== 200) {
    problems.push(`GET /docs/ answered ${response?.status()}`);
  } else {
    console.log(`GET /docs/: 200, Content-Security-Policy: ${response.headers()['content-security-policy'] ?? '(none)'}`);
  }
  let rendered = true;
  try {
    await page.waitForSelector('.opblock', { timeout: 20_000 });
  } catch {
    rendered = false;
    problems.push('Swagger UI rendered no operation (.opblock) within 20 s');
  }
  const blocks = await page.locator('.opblock').count();
  const block = page.locator(`#operations-${operationTag}-${operationId}`);
  if (!rendered) {
    // Nothing more to look for.
  } else if ((await block.count()) === 0) {
    problems.push(`no operation block #operations-${operationTag}-${operationId}`);
  } else if (operationSummary) {
    const text = await block.innerText({ timeout: 5_000 });
    const expected = operationSummary.replace(/\s+/g, ' ').trim().slice(0, 40);
    if (!text.replace(/\s+/g, ' ').includes(expected)) {
      problems.push(`the ${operationId} block does not show its summary "${expected}..."`);
    }
  }
  const title = rendered ? await page.locator('.info .title').first().innerText({ timeout: 5_000 }).catch(() => '') : '';
  console.log(`rendered: "${title.split('\n')[0]}" with ${blocks} operation block(s)`);
  await page.screenshot({ path: screenshotPath, fullPage: false });
  console.log(`screenshot: ${screenshotPath}`);
} catch (error) {
  problems.push(`browser: ${error.message}`);
} finally {
  await context?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

const csp = consoleErrors.filter((text) => /Content Security Policy/i.test(text));
for (const text of csp) problems.push(`CSP violation: ${text}`);
console.log(`${requests.length} request(s), all to ${allowedHost}: ${problems.every((p) => !p.startsWith('request to another host'))}`);
if (problems.length > 0) {
  console.error(`docs render: ${problems.length} problem(s):`);
  for (const problem of problems) console.error(`  - ${problem}`);
  const other = consoleErrors.filter((text) => !csp.includes(text));
  if (other.length > 0) {
    console.error('console errors:');
    for (const text of other.slice(0, 20)) console.error(`  ${text}`);
  }
  console.error('requests:');
  for (const request of requests.slice(0, 40)) console.error(`  ${request}`);
  process.exit(1);
}
console.log('docs render: Swagger UI rendered the operations from 127.0.0.1 only');
