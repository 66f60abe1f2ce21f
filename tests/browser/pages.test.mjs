// Browser tests of the web pages, run by run.sh against a server it started: headless Debian
// Chromium driven by playwright-core (no browser download), axe-core injected into each main page
// (no violations allowed), screenshots of the main pages, and no CSP violations in the console.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.CATALOGUE_URL;
const PASSWORD = process.env.BROWSER_PASSWORD;
const SCREENSHOTS = process.env.SCREENSHOTS;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const USERS = {
  officer: 'officer@rr8.test.nhs.uk',
  otherOfficer: 'officer@rj1.test.nhs.uk',
  exemplar: 'exemplar@rm3.test.nhs.uk',
  admin: 'admin@x24.test.nhs.uk',
  // Changes their password in its test: a user of their own, so that the others still sign in.
  changesPassword: 'password.change@x24.test.nhs.uk',
  // Resets a forgotten password through the emailed link.
  forgotPassword: 'forgot.password@x24.test.nhs.uk',
};
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

assert.ok(BASE && PASSWORD && SCREENSHOTS, 'run these through run.sh');

/** A fresh headless Chromium with its own profile; closed (and the profile removed) by `close`. */
async function openBrowser({ javaScriptEnabled = true } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'catalogue-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    javaScriptEnabled,
    viewport: { width: 1100, height: 900 },
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
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(String(error)));
  return {
    page,
    problems,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

async function signIn(page, email) {
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => !url.pathname.startsWith('/login'));
}

async function ask(page, question) {
  await page.goto(`${BASE}/`);
  await page.getByLabel('Can we use …?').fill(question);
  await page.getByRole('button', { name: 'Ask' }).click();
  await page.waitForLoadState('load');
}

/** axe-core in the page, under the page's own CSP (evaluated through the debugging protocol). */
async function assertAccessible(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const outcome = await axe.run(document, { resultTypes: ['violations'] });
    return outcome.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
    }));
  });
  assert.deepEqual(result, [], `axe found violations on ${name}: ${JSON.stringify(result, null, 2)}`);
}

async function screenshot(page, name) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The console's report of a form answered 422, as the tests of error summaries ask for on purpose. */
function expectedRefusal(problem) {
  return /status of 422 \(Unprocessable Entity\)/.test(problem);
}

function assertNoConsoleProblems(problems) {
  assert.deepEqual(problems, [], `console errors (CSP violations or script errors): ${problems.join('\n')}`);
}

/** The API, as the national team: caps the Windows 10 Enterprise line so that seats can be counted. */
let windowsEntitlement;
before(async () => {
  const api = await apiAs(USERS.admin);
  const products = await api('/v1/products?q=MS-WIN10-ENT');
  const product = products.items.find((p) => p.sku === 'MS-WIN10-ENT');
  // No public source shows Windows licensed nationally today (seeds/README.md), so the tests
  // license it themselves: an agreement with one capped national line for trusts.
  const agreement = await api('/v1/agreements', {
    method: 'POST',
    body: JSON.stringify({
      supplier_id: product.supplier_id, reference: 'BROWSER-TEST-W10E', title: 'Windows 10 Enterprise (browser tests)',
      starts_on: '2023-06-01', funding_model: 'central', status: 'active', eligible_kinds: ['trust'],
    }),
  });
  const line = await api(`/v1/agreements/${agreement.id}/entitlements`, {
    method: 'POST',
    body: JSON.stringify({
      product_id: product.id, tier: 'national_provision', metric: 'per_device', seat_cap: 100000,
      starts_on: '2023-06-01', eligible_kinds: ['trust'],
    }),
  });
  windowsEntitlement = line.id;
});

function seatsLeft(text) {
  const match = /([\d,]+) seats left/.exec(text);
  assert.ok(match, `no seat count in "${text}"`);
  return Number(match[1].replaceAll(',', ''));
}

test('the sign-in page is accessible', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    const response = await page.goto(`${BASE}/login`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'], /default-src 'self'/);
    await screenshot(page, '01-sign-in');
    await assertAccessible(page, 'sign-in');
    assertNoConsoleProblems(problems);
  } finally {
    await close();
  }
});

test('an officer asks about Windows 10 Enterprise, sees it is licensed nationally, claims seats and sees the count drop', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    await assertAccessible(page, 'start');
    await screenshot(page, '02-start');

    await ask(page, 'Windows 10 Enterprise');
    await page.getByRole('heading', { name: 'Licensed nationally' }).waitFor();
    // Windows 10 left support in October 2025: an NHS warning callout says so.
    const warning = page.locator('.nhsuk-card--warning');
    assert.match(await warning.first().innerText(), /unsupported/);
    const seats = page.locator(`#seats-${windowsEntitlement}`);
    const before = seatsLeft(await seats.innerText());
    await screenshot(page, '03-licensed-nationally');
    await assertAccessible(page, 'licensed nationally');

    await page.locator(`#quantity-${windowsEntitlement}`).fill('250');
    await page.locator(`#reference-${windowsEntitlement}`).fill('CHG-2026-114');
    await page.getByRole('button', { name: /Claim seats/ }).first().click();
    await page.getByText('You claimed 250 seats').waitFor();
    const after = seatsLeft(await page.locator(`#seats-${windowsEntitlement}`).innerText());
    assert.equal(after, before - 250, 'the seats left drop by the seats claimed');
    await screenshot(page, '04-claimed');
    await assertAccessible(page, 'after a claim');

    // The organisation's page lists the allocation and the obligations taken on.
    await page.getByRole('link', { name: 'Our organisation' }).click();
    await page.getByRole('heading', { name: 'Seats held' }).waitFor();
    assert.match(await page.locator('main').innerText(), /CHG-2026-114/);
    // Windows 10 is named by an open advisory: holding it, RR8 must acknowledge it.
    const main = await page.locator('main').innerText();
    assert.match(main, /CC-2025-0001/);
    await screenshot(page, '05-organisation');
    await assertAccessible(page, 'organisation');
    await page.getByLabel('Yes').first().check();
    await page.getByRole('button', { name: 'Acknowledge CC-2025-0001' }).click();
    await page.getByText('The advisory is acknowledged.').waitFor();
    assertNoConsoleProblems(problems);
  } finally {
    await close();
  }
});

test('an officer asks about medical device software, sees the standard to buy against and records a purchase', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    await ask(page, 'medical device software');
    await page.getByRole('heading', { name: 'Buy locally against a standard' }).waitFor();
    const answer = await page.locator('main').innerText();
    assert.match(answer, /Medical device security/);
    assert.match(answer, /What a purchase must meet/);
    assert.match(answer, /MUST/);
    await screenshot(page, '06-buy-locally');
    await assertAccessible(page, 'buy locally');

    // Record a purchase against the standard, declaring each requirement.
    await page.getByRole('link', { name: /Record a local purchase against version/ }).first().click();
    await page.getByRole('heading', { name: 'Record a local purchase' }).waitFor();
    await assertAccessible(page, 'purchase form');
    await screenshot(page, '07-purchase-form');
    await page.getByLabel('Product').selectOption({ label: 'ExampleScan Ultrasound Cart 9.1' });
    await page.getByLabel('Quantity').fill('2');
    await page.getByLabel('Cost of one unit, in pounds').fill('48,500.00');
    await page.getByLabel('Order reference').fill('PO-RR8-7781');
    for (const box of await page.locator('input.nhsuk-checkboxes__input').all()) await box.check();
    await page.getByRole('button', { name: 'Record the purchase' }).click();
    await page.getByText('The purchase is recorded').waitFor();
    assert.match(await page.locator('main').innerText(), /PO-RR8-7781/);
    assertNoConsoleProblems(problems);
  } finally {
    await close();
  }
});

test('the answer leads with what to do: Windows 7 is a red stop, Windows 10 Enterprise is paid updates only, a national provision comes before buying', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    const action = async () => {
      const card = page.locator('.app-answer > .app-action');
      await card.waitFor();
      // The action is the answer's first element: above what is licensed and the warnings.
      const first = page.locator('.app-answer > *').first();
      assert.equal(await first.getAttribute('data-action'), await card.getAttribute('data-action'));
      return { code: await card.getAttribute('data-action'), text: await card.innerText(), card };
    };

    await ask(page, 'Windows 7 Enterprise');
    let shown = await action();
    assert.equal(shown.code, 'do_not_buy_unsupported');
    assert.match(shown.text, /Do not buy or deploy Windows 7 Enterprise/);
    assert.match(shown.text, /risk acceptance/);
    // Red, not a footnote: the NHS urgent care card's heading colour.
    const colour = await page.locator('.nhsuk-card--care__heading-container').first()
      .evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(colour, 'rgb(213, 40, 27)');
    await screenshot(page, '30-action-windows-7-unsupported');
    await assertAccessible(page, 'action: unsupported');

    await ask(page, 'Windows 10 Enterprise');
    shown = await action();
    assert.equal(shown.code, 'extended_updates_only');
    assert.match(shown.text, /Extended Security Updates until 2028-10-10/);
    await screenshot(page, '31-action-windows-10-extended-updates');
    await assertAccessible(page, 'action: extended updates only');

    await ask(page, 'Example Endpoint Shield');
    shown = await action();
    assert.equal(shown.code, 'use_national_provision');
    assert.match(shown.text, /Defender for Endpoint/);
    await screenshot(page, '32-action-national-provision');
    await assertAccessible(page, 'action: national provision');

    // A question naming two products is not answered for the first: the page asks which.
    await ask(page, 'Windows 10');
    await page.getByRole('heading', { name: 'Which product do you mean?' }).waitFor();
    assert.equal(await page.locator('.app-action').count(), 0);
    await screenshot(page, '33-which-product');
    await assertAccessible(page, 'which product');
    assertNoConsoleProblems(problems);
  } finally {
    await close();
  }
});

test('an officer checks an inventory file, then imports it, and sees what the trust runs', async () => {
  const { page, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    await page.goto(`${BASE}/organisations/RR8`);
    await page.getByRole('link', { name: 'What RR8 runs' }).click();
    await page.getByRole('heading', { name: 'What RR8 runs' }).waitFor();
    await assertAccessible(page, 'estate');
    const inventory = {
      name: 'rr8-inventory.csv',
      mimeType: 'text/csv',
      // Products no advisory names, so that the later tests' exposure pages stay as they are.
      buffer: Buffer.from('product,devices,site\nMS-WS2019-STD,120,Data centre\nNo Such Tool,2,Pathology\n'),
    };
    await page.getByLabel('The inventory file').setInputFiles(inventory);
    await page.getByRole('button', { name: 'Upload the file' }).click();
    await page.getByRole('heading', { name: /Check of rr8-inventory.csv/ }).waitFor();
    await assertAccessible(page, 'estate check');
    await screenshot(page, '16-estate-check');
    await page.goto(`${BASE}/organisations/RR8/estate`);
    await page.getByLabel('The inventory file').setInputFiles(inventory);
    await page.getByLabel('Check the file first, without importing').uncheck();
    await page.getByRole('button', { name: 'Upload the file' }).click();
    await page.getByRole('heading', { name: 'What RR8 runs' }).waitFor();
    assert.match(await page.locator('main').innerText(), /120/);
    await assertAccessible(page, 'estate after import');
  } finally {
    await close();
  }
});

test('the pages work with JavaScript off', async () => {
  const { page, close } = await openBrowser({ javaScriptEnabled: false });
  try {
    await signIn(page, USERS.officer);
    await ask(page, 'Windows 10 Enterprise');
    await page.getByRole('heading', { name: 'Licensed nationally' }).waitFor();
    assert.equal(await page.getByRole('alertdialog').count(), 0, 'no timeout warning without its script');
  } finally {
    await close();
  }
});

test("an officer of one trust cannot see another trust's pages", async () => {
  const { page, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    const theirs = await page.goto(`${BASE}/organisations/RJ1`);
    assert.equal(theirs.status(), 404);
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    assert.doesNotMatch(await page.locator('main').innerText(), /Guy's and St Thomas/);
    const ours = await page.goto(`${BASE}/organisations/RR8`);
    assert.equal(ours.status(), 200);
  } finally {
    await close();
  }
});

test('a form posted without its CSRF token is refused', async () => {
  const { page, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    await ask(page, 'Windows 10 Enterprise');
    const form = page.locator(`form[action="/entitlements/${windowsEntitlement}/claim"]`);
    await form.locator('input[name="csrf_token"]').evaluate((input) => input.remove());
    await page.locator(`#quantity-${windowsEntitlement}`).fill('5');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith(`/entitlements/${windowsEntitlement}/claim`)),
      form.getByRole('button', { name: /Claim seats/ }).click(),
    ]);
    assert.equal(response.status(), 403);
    await page.getByRole('heading', { name: 'You cannot do this' }).waitFor();
    assert.match(await page.locator('main').innerText(), /security token/);
  } finally {
    await close();
  }
});

test('an exemplar publishes a new version of their standard, after a page that says what it supersedes', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.exemplar);
    await page.getByRole('link', { name: 'Standards' }).click();
    await page.getByRole('link', { name: 'Medical device security' }).click();
    await page.getByRole('button', { name: 'Start a new version' }).click();
    await page.getByText('is a draft').waitFor();
    await page.getByLabel('Id').fill('MDS-09');
    await page.getByLabel('Level').selectOption('MUST');
    await page.getByLabel('Requirement', { exact: true }).fill(
      'The supplier MUST provide a software bill of materials for the device.',
    );
    await page.getByRole('button', { name: 'Add requirement' }).click();
    await page.getByText('requirements of draft version 3 are saved').waitFor();
    await screenshot(page, '08-standard-draft');
    await assertAccessible(page, 'standard with a draft');

    await page.getByRole('button', { name: 'Publish version 3' }).click();
    await page.getByRole('heading', { name: 'Publish version 3?' }).waitFor();
    assert.match(await page.locator('main').innerText(), /supersedes version 2, published on/);
    await screenshot(page, '09-publish-confirmation');
    await assertAccessible(page, 'publish confirmation');

    await page.getByRole('button', { name: 'Publish version 3' }).click();
    await page.getByText('Version 3 is published').waitFor();
    await page.getByRole('heading', { name: 'Version 3: published' }).waitFor();
    assert.match(await page.locator('main').innerText(), /MDS-09/);
    assertNoConsoleProblems(problems);
  } finally {
    await close();
  }

  // Officers are now told to buy against version 3.
  const officer = await openBrowser();
  try {
    await signIn(officer.page, USERS.officer);
    await ask(officer.page, 'medical device software');
    assert.match(await officer.page.locator('main').innerText(), /Medical device security, version 3/);
  } finally {
    await officer.close();
  }
});

test('the national team sees a utilisation chart per entitlement', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.admin);
    await page.getByRole('link', { name: 'Agreements' }).click();
    await assertAccessible(page, 'agreements');
    // The agreement the tests licensed Windows 10 Enterprise under (see `before`).
    await page.getByRole('link', { name: /Windows 10 Enterprise \(browser tests\)/ }).first().click();
    await page.getByRole('heading', { name: /Utilisation on/ }).waitFor();
    const charts = page.locator('svg.app-chart');
    assert.ok((await charts.count()) > 0, 'at least one chart');
    await page.locator(`#utilisation-${windowsEntitlement}`).scrollIntoViewIfNeeded();
    await screenshot(page, '10-agreement-utilisation');
    await assertAccessible(page, 'agreement');
    // The advisory that RR8 acknowledged above: its exposure, overdue acknowledgements first.
    await page.getByRole('link', { name: 'Advisories' }).click();
    await assertAccessible(page, 'advisories');
    await page.getByRole('link', { name: /Windows 10/ }).first().click();
    await page.getByRole('heading', { name: 'Exposure' }).waitFor();
    assert.match(await page.locator('main').innerText(), /Leeds Teaching Hospitals NHS Trust \(RR8\)\s+250 via allocation\s+Acknowledged/);
    await screenshot(page, '11-advisory-exposure');
    await assertAccessible(page, 'advisory');
    // Who holds unsupported software today: RR8, with its Windows 10 seats.
    await page.getByRole('link', { name: 'Reports' }).click();
    await assertAccessible(page, 'reports');
    await page.getByRole('link', { name: 'Unsupported software' }).click();
    await page.getByRole('heading', { name: /Unsupported software on/ }).waitFor();
    assert.match(await page.locator('main').innerText(), /Leeds Teaching Hospitals NHS Trust \(RR8\)/);
    await assertAccessible(page, 'unsupported software');
    await screenshot(page, '12-unsupported-software');
    // What organisations run beside what they hold: nothing yet, as no trust imported an estate.
    await page.getByRole('link', { name: 'Reports' }).click();
    await page.getByRole('link', { name: 'Estates and holdings' }).click();
    await page.getByRole('heading', { name: /Estates and holdings on/ }).waitFor();
    await assertAccessible(page, 'estates and holdings');
    await page.getByRole('link', { name: 'Users' }).click();
    await assertAccessible(page, 'users');
    await screenshot(page, '13-users');
    assertNoConsoleProblems(problems);
  } finally {
    await close();
  }
});

test('an exemplar assesses a product, changes a draft requirement and sees what withdrawing would do', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.exemplar);
    await page.getByRole('link', { name: 'Standards' }).click();
    await page.getByRole('link', { name: 'Medical device security' }).click();
    await page.getByRole('link', { name: /Products assessed against version/ }).click();
    await page.getByRole('heading', { name: /Assessments against version/ }).waitFor();
    await page.getByLabel('Product', { exact: true }).selectOption({ label: 'ExampleScan Ultrasound Cart 9.1' });
    for (const box of await page.locator('input.nhsuk-checkboxes__input').all()) await box.check();
    await page.getByLabel('Evidence (optional)').fill('https://example.org/mds2/ultrasound-9.1');
    await page.getByRole('button', { name: 'Record the assessment' }).click();
    await page.getByText('ExampleScan Ultrasound Cart 9.1 is assessed: it conforms').waitFor();
    await screenshot(page, '14-assessments');
    await assertAccessible(page, 'assessments');

    // A draft's requirement, changed on its own page.
    await page.getByRole('link', { name: 'Medical device security' }).click();
    await page.getByRole('button', { name: 'Start a new version' }).click();
    await page.getByText('is a draft').waitFor();
    await page.getByRole('link', { name: 'Change MDS-04' }).click();
    await page.getByRole('heading', { name: 'Change MDS-04' }).waitFor();
    await page.getByLabel('Requirement', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Save the requirement' }).click();
    await page.locator('.nhsuk-error-summary').waitFor();
    await screenshot(page, '15-change-requirement-error');
    await assertAccessible(page, 'change a requirement, with an error');
    await page.getByLabel('Level').selectOption('MUST');
    await page.getByLabel('Requirement', { exact: true }).fill('The device MUST work on a segregated network segment (VLAN).');
    await page.getByRole('button', { name: 'Save the requirement' }).click();
    await page.getByText('requirements of draft version 4 are saved').waitFor();
    await page.getByRole('button', { name: 'Remove MDS-06' }).click();
    await page.getByText('requirements of draft version 4 are saved').waitFor();
    assert.doesNotMatch(await page.locator('table').nth(1).innerText(), /MDS-06/);

    // Withdrawing the published version: the confirmation page says what follows (not confirmed here).
    await page.getByRole('link', { name: 'Withdraw version 3' }).click();
    await page.getByRole('heading', { name: 'Withdraw version 3?' }).waitFor();
    assert.match(await page.locator('main').innerText(), /no version of this standard is published/);
    await screenshot(page, '16-withdraw-confirmation');
    await assertAccessible(page, 'withdraw confirmation');
    await page.getByRole('link', { name: 'Cancel and go back to the standard' }).click();
    await page.getByRole('link', { name: 'Withdraw draft version 4' }).click();
    await page.getByRole('button', { name: 'Withdraw version 4' }).click();
    await page.getByText('Version 4 is withdrawn.').waitFor();
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});

test('an officer records whether an advisory applies, closes it, records a risk acceptance and corrects a purchase', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    await page.getByRole('link', { name: 'Our organisation' }).click();
    await page.getByRole('link', { name: 'The response of RR8 to CC-2025-0001' }).click();
    await page.getByRole('heading', { name: 'CC-2025-0001: the response of RR8' }).waitFor();
    await page.getByRole('button', { name: 'Close CC-2025-0001 for RR8' }).click();
    await page.locator('.nhsuk-error-summary').getByText('closing needs a remediation note').waitFor();
    await screenshot(page, '17-advisory-response');
    await assertAccessible(page, 'advisory response');
    await page.getByLabel('Yes').check();
    await page.getByLabel('Why (optional)').fill('250 desktops on Windows 10 Enterprise');
    await page.getByRole('button', { name: 'Record whether it applies' }).click();
    await page.getByText('Whether the advisory applies is recorded.').waitFor();
    await page.getByLabel('What was done').fill('Extended security updates bought; upgrade to Windows 11 planned.');
    await page.getByRole('button', { name: 'Close CC-2025-0001 for RR8' }).click();
    await page.getByText('The advisory is closed').waitFor();

    await page.getByRole('link', { name: 'Leeds Teaching Hospitals NHS Trust', exact: true }).click();
    await page.getByRole('link', { name: 'Record a risk acceptance' }).click();
    await page.getByRole('heading', { name: 'Record a risk acceptance' }).waitFor();
    await assertAccessible(page, 'risk acceptance form');
    await screenshot(page, '18-risk-acceptance');
    await page.getByLabel('Product', { exact: true }).selectOption({ index: 1 });
    await page.getByLabel('Compensating controls').fill('Isolated VLAN; no internet access; monitored by the SOC.');
    const expiry = page.getByRole('group', { name: 'Expires on' });
    await expiry.getByLabel('Day').fill('31');
    await expiry.getByLabel('Month').fill('3');
    await expiry.getByLabel('Year').fill(`${new Date().getUTCFullYear() + 1}`);
    await page.getByRole('button', { name: 'Record the risk acceptance' }).click();
    await page.getByText('The risk acceptance is recorded.').waitFor();
    assert.match(await page.locator('main').innerText(), /Isolated VLAN; no internet access/);

    await page.getByRole('link', { name: 'Correct the purchase PO-RR8-7781' }).click();
    await page.getByRole('heading', { name: 'Correct a local purchase' }).waitFor();
    await assertAccessible(page, 'purchase correction');
    await screenshot(page, '19-purchase-correction');
    await page.getByLabel('Quantity').fill('3');
    await page.getByLabel('Order reference').fill('PO-RR8-7781A');
    await page.getByRole('button', { name: 'Record the correction' }).click();
    await page.getByText('The correction is recorded').waitFor();
    const main = await page.locator('main').innerText();
    assert.match(main, /PO-RR8-7781A/);
    assert.match(main, /Corrects an earlier record/);
    await screenshot(page, '20-organisation-after-corrections');
    await assertAccessible(page, 'organisation after corrections');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});

test('signing out ends the session: the old cookie no longer works', async () => {
  const { page, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    const [cookie] = (await page.context().cookies()).filter((c) => c.name === 'catalogue_session');
    assert.ok(cookie, 'a session cookie');
    await page.goto(`${BASE}/logout`);
    assert.match(await page.locator('main').innerText(), /ends every session of your account/);
    await page.locator('main').getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You have signed out').waitFor();
    await page.context().addCookies([cookie]);
    await page.goto(`${BASE}/organisations/RR8`);
    assert.ok(new URL(page.url()).pathname.startsWith('/login'), `signed out, not ${page.url()}`);
  } finally {
    await close();
  }
});

test('an officer manages what they are told: the defaults, an error summary that keeps the answers, a daily email added and one ended, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    // Another trust's officer than the other tests use, so their subscriptions are theirs alone.
    await signIn(page, USERS.otherOfficer);
    await page.getByRole('link', { name: 'Notifications' }).click();
    await page.getByRole('heading', { name: 'Notifications', level: 1 }).waitFor();
    const main = page.locator('main');
    assert.match(await main.innerText(), /Email at once/);
    assert.match(await main.innerText(), /Email, daily digest/);
    await screenshot(page, '30-notifications');
    await assertAccessible(page, 'notifications');

    // Nothing chosen to be told about: the summary says so and the other answers are kept.
    await page.getByLabel('By email', { exact: true }).check();
    await page.getByLabel(/Once a day/).check();
    await page.getByRole('button', { name: 'Add the notification' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.match(await summary.innerText(), /Choose at least one thing to be told about/);
    assert.ok(await page.getByLabel(/Once a day/).isChecked(), 'the cadence is kept');
    await screenshot(page, '31-notifications-error');
    await assertAccessible(page, 'notifications with an error');

    await page.getByLabel('seats are all claimed').check();
    await page.getByRole('button', { name: 'Add the notification' }).click();
    await page.getByText('You will be told of what you chose.').waitFor();
    assert.equal(await page.getByRole('link', { name: /End this subscription/ }).count(), 3);

    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, '32-notifications-390');
    await assertAccessible(page, 'notifications at 390 px');

    await page.getByRole('link', { name: /End this subscription/ }).first().click();
    await page.getByRole('heading', { name: 'End this subscription?' }).waitFor();
    await assertAccessible(page, 'ending a subscription at 390 px');
    await page.getByRole('button', { name: 'End the subscription' }).click();
    await page.getByText('That subscription has ended').waitFor();
    assert.equal(await page.getByRole('link', { name: /End this subscription/ }).count(), 2);
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});

/**
 * That the page is no wider than the window: nothing to scroll sideways on a phone. Right after
 * the window is narrowed, the header's script has not yet folded its navigation (seen: 569 and
 * 837 px), so the page is given up to two seconds to lay itself out; a page that stays too wide
 * still fails.
 */
async function assertFitsWidth(page, name) {
  await page
    .waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, null, { timeout: 2000 })
    .catch(() => {});
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${name} is ${scrollWidth} px wide in a ${innerWidth} px window`);
}

test('an officer releases part of an allocation: a page asks how many, an error summary keeps what was typed, the rest is kept, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    await ask(page, 'Windows 10 Enterprise');
    await page.getByRole('heading', { name: 'Licensed nationally' }).waitFor();
    await page.locator(`#quantity-${windowsEntitlement}`).fill('1,200');
    await page.locator(`#reference-${windowsEntitlement}`).fill('CHG-RELEASE-1');
    await page.getByRole('button', { name: /Claim seats/ }).first().click();
    await page.getByText('You claimed 1,200 seats').waitFor();

    await page.getByRole('link', { name: 'Our organisation' }).click();
    const row = page.locator('tr', { hasText: 'CHG-RELEASE-1' });
    await row.getByRole('link', { name: /Release seats/ }).click();
    await page.getByRole('heading', { name: 'Release seats', level: 1 }).waitFor();
    assert.equal(await page.getByLabel('How many seats to release').inputValue(), '1,200', 'all seats at first');
    await screenshot(page, '50-release');
    await assertAccessible(page, 'release');

    // On a phone from here: the page with the error is drawn at 390 px. Narrowed after loading, a
    // page keeps the wide header until the header's script folds its navigation after the resize
    // (CI measured 569 px at once); loaded at this width it is folded from the start.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByLabel('How many seats to release').fill('1,500');
    await page.getByRole('button', { name: 'Release the seats' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.match(await summary.innerText(), /Enter 1,200 or fewer/);
    assert.equal(await page.getByLabel('How many seats to release').inputValue(), '1,500', 'what was typed is kept');
    await assertFitsWidth(page, 'release with an error at 390 px');
    await summary.getByRole('link').click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'quantity', 'the summary leads to the field');
    await screenshot(page, '51-release-error-390');
    await assertAccessible(page, 'release with an error at 390 px');

    await page.getByLabel('How many seats to release').fill('200');
    await page.getByRole('button', { name: 'Release the seats' }).click();
    await page.getByText('You released 200 seats.').waitFor();
    const kept = page.locator('tr', { hasText: 'CHG-RELEASE-1' });
    assert.match(await kept.innerText(), /1,000|1000/, 'the rest is kept');
    await page.setViewportSize({ width: 1280, height: 900 });
    await screenshot(page, '52-released-1280');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});

test('the national team adds an account: every problem listed and linked, values kept, then the account disabled after confirming, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.admin);
    await page.goto(`${BASE}/users`);
    await page.getByRole('link', { name: 'Add a user' }).click();
    await page.getByRole('heading', { name: 'Add a user', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Add the user' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 4, 'name, email, role and password');
    assert.match(await page.title(), /^Error: Add a user/);
    await screenshot(page, '60-new-user-errors-1280');
    await assertAccessible(page, 'new user with errors');
    await summary.getByRole('link', { name: /what the person does/ }).click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'role', 'the summary leads to the first choice');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/users/new`);
    const email = `browser-${Date.now()}@nhs.net`;
    await page.getByLabel('Full name').fill('Priya Shah');
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Procurement officer').check();
    await page.getByLabel('Password to sign in with at first').fill('password1');
    await page.getByRole('button', { name: 'Add the user' }).click();
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 2, 'the trust and the password');
    assert.equal(await page.getByLabel('Full name').inputValue(), 'Priya Shah', 'what was typed is kept');
    assert.ok(await page.getByLabel('Procurement officer').isChecked(), 'the role chosen is kept');
    assert.equal(await page.getByLabel('Password to sign in with at first').inputValue(), '', 'never the password');
    await assertFitsWidth(page, 'new user with errors at 390 px');
    await screenshot(page, '61-new-user-errors-390');
    await assertAccessible(page, 'new user with errors at 390 px');

    await page.getByLabel('Organisation (ODS code)').fill('RR8');
    await page.getByLabel('Password to sign in with at first').fill('tangerine quietly harbours seven kites');
    await page.getByRole('button', { name: 'Add the user' }).click();
    await page.getByText('Account created').waitFor();
    await page.getByRole('heading', { name: 'Priya Shah', level: 1 }).waitFor();
    await assertFitsWidth(page, 'the new account at 390 px');
    await screenshot(page, '62-user-390');
    await assertAccessible(page, 'user page');

    await page.getByRole('link', { name: 'Disable this account' }).click();
    await page.getByRole('heading', { name: /Disable Priya Shah/ }).waitFor();
    await assertAccessible(page, 'disable confirmation');
    await page.getByRole('button', { name: 'Disable the account' }).click();
    await page.getByText('Account disabled').waitFor();
    await page.setViewportSize({ width: 1280, height: 900 });
    await screenshot(page, '63-user-disabled-1280');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});

test('at 390 px the pages with tables fit the screen, each row stacked under its headings, and print without forms or buttons', async () => {
  const visits = [
    [USERS.officer, ['/organisations/RR8', '/agreements']],
    [USERS.admin, ['/users', '/audit']],
    [USERS.exemplar, ['/standards']],
  ];
  for (const [user, paths] of visits) {
    const { page, problems, close } = await openBrowser();
    try {
      await signIn(page, user);
      await page.setViewportSize({ width: 390, height: 844 });
      const shown = [...paths];
      if (user === USERS.officer) {
        // An agreement's own page, with its lines and obligations.
        await page.goto(`${BASE}/agreements`);
        shown.push(new URL(await page.locator('main table tbody a').first().getAttribute('href'), BASE).pathname);
      }
      if (user === USERS.exemplar) {
        // A version's assessments, reached from the exemplar's standard.
        await page.goto(`${BASE}/standards`);
        await page.locator('main table tbody a').first().click();
        const assessments = page.locator('main a[href*="/assessments"]').first();
        shown.push(new URL(await assessments.getAttribute('href'), BASE).pathname);
      }
      for (const path of shown) {
        await page.goto(`${BASE}${path}`);
        const table = page.locator('main table').first();
        assert.equal(await table.getAttribute('class'), 'nhsuk-table-responsive', `${path}: a responsive table`);
        await assertFitsWidth(page, `${path} at 390 px`);
        await assertAccessible(page, `${path} at 390 px`);
        const name = path.replace(/^\//, '').replace(/[^a-z0-9]+/gi, '-');
        await screenshot(page, `40-${name}-390`);
        // Each stacked cell is led by its column's heading.
        const heading = table.locator('tbody .nhsuk-table-responsive__heading').first();
        assert.ok(await heading.isVisible(), `${path}: the column heading shows beside a cell at 390 px`);
      }
      // Printed, the organisation's page keeps its tables and leaves out its forms and buttons.
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.emulateMedia({ media: 'print' });
      await page.goto(`${BASE}${shown[0]}`);
      const hidden = await page.evaluate(() =>
        [...document.querySelectorAll('main form, main .nhsuk-button, .nhsuk-header__navigation')].every(
          (element) => getComputedStyle(element).display === 'none',
        ),
      );
      assert.ok(hidden, `${shown[0]} printed: forms, buttons and the navigation are left out`);
      if ((await page.locator('main table').count()) > 0) {
        assert.ok(await page.locator('main table').first().isVisible(), `${shown[0]} printed keeps its tables`);
      }
      await page.screenshot({ path: join(SCREENSHOTS, `41-print-${user.split('@')[0]}.png`), fullPage: true });
      await page.emulateMedia({ media: 'screen' });
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(`${BASE}${shown[0]}`);
      await assertFitsWidth(page, `${shown[0]} at 1280 px`);
      await screenshot(page, `42-${shown[0].replace(/^\//, '').replace(/[^a-z0-9]+/gi, '-')}-1280`);
      assertNoConsoleProblems(problems);
    } finally {
      await close();
    }
  }
});

test('a date is typed as day, month and year: the error summary links to the wrong box, only it is marked and what was typed is kept, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await signIn(page, USERS.officer);
    await ask(page, 'medical device software');
    await page.getByRole('link', { name: /Record a local purchase against version/ }).first().click();
    await page.getByRole('heading', { name: 'Record a local purchase' }).waitFor();
    const date = page.getByRole('group', { name: 'Date of purchase' });
    assert.match(await date.innerText(), /For example, 2 11 2026/);
    const today = new Date();
    assert.equal(await date.getByLabel('Year').inputValue(), `${today.getUTCFullYear()}`, 'today to start with');

    await page.getByLabel('Description, if it is not in the catalogue').fill('Portable X-ray unit');
    await page.getByLabel('Quantity').fill('1');
    await page.getByLabel('Cost of one unit, in pounds').fill('12,000');
    await page.getByLabel('Order reference').fill('PO-RR8-DATES');
    await date.getByLabel('Day').fill('31');
    await date.getByLabel('Month').fill('2');
    await date.getByLabel('Year').fill('2026');
    await page.getByRole('button', { name: 'Record the purchase' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 1);
    assert.match(await summary.innerText(), /Date of purchase must be a real date/);
    const marked = async () => Promise.all(['day', 'month', 'year'].map((part) =>
      page.locator(`#purchased_on-${part}`).evaluate((input) => input.classList.contains('nhsuk-input--error'))));
    assert.deepEqual(await marked(), [true, false, false], 'only the day is marked');
    assert.equal(await page.locator('#purchased_on-day').inputValue(), '31', 'what was typed is kept');
    await summary.getByRole('link').click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'purchased_on-day', 'the summary leads to the day');
    await screenshot(page, '80-date-error-1280');
    await assertAccessible(page, 'purchase with a date error');

    // On a phone: a 2-digit year. Loaded at this width (see the release test).
    await page.setViewportSize({ width: 390, height: 844 });
    await date.getByLabel('Day').fill('2');
    await date.getByLabel('Month').fill('11');
    await date.getByLabel('Year').fill('26');
    await page.getByRole('button', { name: 'Record the purchase' }).click();
    await summary.getByText('Year must include 4 numbers').waitFor();
    assert.deepEqual(await marked(), [false, false, true], 'only the year is marked');
    await summary.getByRole('link').click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'purchased_on-year');
    await assertFitsWidth(page, 'date error at 390 px');
    await screenshot(page, '81-date-error-390');
    await assertAccessible(page, 'purchase with a date error at 390 px');

    // The month may be a name ("Dec"); the purchase is then recorded. Today: the standard's
    // version was published when the browser tests' database was made.
    await date.getByLabel('Day').fill(`${today.getUTCDate()}`);
    await date.getByLabel('Month').fill(today.toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' }));
    await date.getByLabel('Year').fill(`${today.getUTCFullYear()}`);
    await page.getByRole('button', { name: 'Record the purchase' }).click();
    await page.getByText('The purchase is recorded').waitFor();
    await page.setViewportSize({ width: 1280, height: 900 });
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});

/**
 * Makes the browser's session one that ended a minute ago, after 15 idle minutes: its token is
 * re-signed (with the secret run.sh gave the server) as issued 16 minutes ago, so the server's
 * quarter of an hour passes at once. The session id, and so the page's CSRF token, stay.
 */
async function endSessionByIdling(context) {
  const secret = process.env.CATALOGUE_JWT_SECRET;
  assert.ok(secret, 'run.sh exports the signing secret');
  const session = (await context.cookies()).find((c) => c.name === 'catalogue_session');
  assert.ok(session, 'a session cookie');
  const dot = session.value.indexOf('.');
  const [id, token] = [session.value.slice(0, dot), session.value.slice(dot + 1)];
  const [header, payload] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  const now = Math.floor(Date.now() / 1000);
  Object.assign(claims, { iat: now - 16 * 60, exp: now - 60 });
  const unsigned = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = createHmac('sha256', secret).update(unsigned).digest('base64url');
  await context.addCookies([{ ...session, value: `${id}.${unsigned}.${signature}` }]);
}

test('a warning comes two minutes before the session ends: accessible, focused, and "Stay signed in" renews it, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    // The page's own clock, moved on by the test: the page counts down from the time it was given.
    await page.clock.install();
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.officer);
    await page.goto(`${BASE}/organisations/RR8`);
    const warning = page.getByRole('alertdialog', { name: "You're about to be signed out" });
    assert.equal(await warning.count(), 0, 'no warning while the session has long to run');
    await page.clock.fastForward('12:30');
    assert.equal(await warning.count(), 0, 'none two and a half minutes before the end');
    await page.clock.fastForward('00:40');
    await warning.waitFor();
    assert.match(await warning.innerText(), /sign you out in 2 minutes/);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'session-timeout', 'focus moves to the warning');
    assert.equal(await warning.getAttribute('aria-modal'), 'true');
    await assertAccessible(page, 'timeout warning');
    await screenshot(page, '70-timeout-warning-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, '71-timeout-warning-390');

    const [renewal] = await Promise.all([
      page.waitForResponse((response) => new URL(response.url()).pathname === '/session/renew'),
      warning.getByRole('button', { name: 'Stay signed in' }).click(),
    ]);
    assert.equal(renewal.status(), 200);
    assert.equal((await renewal.json()).expires_in, 900, 'the session has its 15 minutes again');
    await warning.waitFor({ state: 'hidden' });
    assert.ok(await page.getByRole('heading', { level: 1 }).isVisible(), 'back on the page');

    // Left alone again: warned, then told the session has ended, with the page left as it was.
    await page.clock.fastForward('13:05');
    await warning.waitFor();
    await page.clock.fastForward('02:00');
    const ended = page.getByRole('alertdialog', { name: 'You have been signed out' });
    await ended.waitFor();
    assert.match(await ended.innerText(), /brought back to it, with what you typed kept/);
    await assertAccessible(page, 'signed out warning');
    await page.setViewportSize({ width: 1280, height: 900 });
    await screenshot(page, '72-timeout-ended-1280');
    await ended.getByRole('button', { name: 'Continue' }).click();
    await ended.waitFor({ state: 'hidden' });
    assertNoConsoleProblems(problems);
  } finally {
    await close();
  }
});

test('a form sent after the session ended is kept: the sign-in page says why, and signing in again returns to the form with what was typed, never the password, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.admin);
    await page.goto(`${BASE}/users/new`);
    const email = `kept-${Date.now()}@nhs.net`;
    await page.getByLabel('Full name').fill('Grace Hopper');
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Procurement officer').check();
    await page.getByLabel('Organisation (ODS code)').fill('RR8');
    await page.getByLabel('Password to sign in with at first').fill('tangerine quietly harbours seven kites');
    await endSessionByIdling(page.context());
    await page.getByRole('button', { name: 'Add the user' }).click();

    await page.waitForURL((url) => url.pathname === '/login');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/users/new');
    const notice = page.getByRole('region', { name: 'Important' });
    assert.match(await notice.innerText(), /signed out after up to 15 minutes without activity/);
    assert.match(await notice.innerText(), /Sign in again to send the form you were filling in/);
    await screenshot(page, '73-signed-out-form-kept-1280');
    await assertAccessible(page, 'sign-in with a kept form');

    await page.getByLabel('Email address').fill(USERS.admin);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.pathname === '/users/new');
    await page.getByText('Your form has not been sent yet').waitFor();
    assert.equal(await page.getByLabel('Full name').inputValue(), 'Grace Hopper');
    assert.equal(await page.getByLabel('Email address').inputValue(), email);
    assert.ok(await page.getByLabel('Procurement officer').isChecked());
    assert.equal(await page.getByLabel('Organisation (ODS code)').inputValue(), 'RR8');
    assert.equal(await page.getByLabel('Password to sign in with at first').inputValue(), '', 'never the password');
    await page.getByText('Type the password again').waitFor();
    await screenshot(page, '74-form-given-back-1280');
    await assertAccessible(page, 'the form given back');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertFitsWidth(page, 'the form given back at 390 px');
    await screenshot(page, '75-form-given-back-390');

    // Checked, and sent again by the person, with the new session's token.
    await page.getByLabel('Password to sign in with at first').fill('tangerine quietly harbours seven kites');
    await page.getByRole('button', { name: 'Add the user' }).click();
    await page.getByText('Account created').waitFor();
    await page.getByRole('heading', { name: 'Grace Hopper', level: 1 }).waitFor();
    assertNoConsoleProblems(problems);
  } finally {
    await close();
  }
});

/** The API as `email`: a function that sends a request with their token and answers the JSON. */
async function apiAs(email) {
  const tokenResponse = await fetch(`${BASE}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  assert.equal(tokenResponse.status, 200);
  const { access_token: token } = await tokenResponse.json();
  return async (path, init = {}) => {
    const response = await fetch(`${BASE}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
    });
    assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
    return response.json();
  };
}

/** Someone else's change through the API, as the national team, at any revision: what a form
    opened before it must not silently undo. */
async function changeElsewhere(path, changes) {
  const admin = await apiAs(USERS.admin);
  await admin(path, { method: 'PATCH', headers: { 'if-match': '*' }, body: JSON.stringify(changes) });
}

/** The console's report of a form answered with `status`, as a test asks for on purpose. */
function refusedWith(status) {
  return (problem) => new RegExp(`status of ${status} `).test(problem);
}

test('anyone changes their password: every problem listed at once, passwords never shown back, then signed out everywhere and in with the new one, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  const newPassword = 'tangerine otter on a bicycle';
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.changesPassword);
    await page.getByRole('link', { name: 'Change password' }).click();
    await page.getByRole('heading', { name: 'Change your password', level: 1 }).waitFor();
    await screenshot(page, '90-change-password-1280');
    await assertAccessible(page, 'change password');

    await page.getByRole('button', { name: 'Change password' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 3, 'current, new and confirmed');
    assert.match(await page.title(), /^Error: Change your password/);
    await screenshot(page, '91-change-password-errors-1280');
    await assertAccessible(page, 'change password with errors');
    await summary.getByRole('link', { name: 'Enter a new password' }).click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'new_password', 'the summary leads to the field');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/account/password`);
    await page.getByLabel('Current password').fill('not my password at all');
    await page.getByLabel('New password', { exact: true }).fill('password1');
    await page.getByLabel('Confirm new password').fill('pasword1');
    await page.getByRole('button', { name: 'Change password' }).click();
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 2, 'the new password and its confirmation');
    assert.match(await summary.innerText(), /at least 12 characters/);
    assert.match(await summary.innerText(), /do not match/);
    for (const label of ['Current password', 'Confirm new password']) {
      assert.equal(await page.getByLabel(label).inputValue(), '', `${label}: never shown back`);
    }
    assert.equal(await page.getByLabel('New password', { exact: true }).inputValue(), '', 'never shown back');
    await assertFitsWidth(page, 'change password with errors at 390 px');
    await screenshot(page, '92-change-password-errors-390');
    await assertAccessible(page, 'change password with errors at 390 px');

    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('Confirm new password').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.waitForURL((url) => url.pathname === '/login');
    await page.getByText('Your password has been changed').waitFor();
    await assertFitsWidth(page, 'signed out after the change at 390 px');
    await screenshot(page, '93-password-changed-390');
    await assertAccessible(page, 'signed out after changing the password');
    const back = await page.goto(`${BASE}/account/password`);
    assert.equal(new URL(page.url()).pathname, '/login', `the old session ended (${back.status()})`);

    await page.getByLabel('Email address').fill(USERS.changesPassword);
    await page.getByLabel('Password').fill(newPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => !url.pathname.startsWith('/login'));
    await page.getByRole('link', { name: 'Change password' }).waitFor();
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});

test('the national team adds an advisory and changes it: every problem listed, a change made meanwhile is not undone, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.admin);
    await page.goto(`${BASE}/advisories`);
    await page.getByRole('link', { name: 'Add an advisory' }).click();
    await page.getByRole('heading', { name: 'Add an advisory', level: 1 }).waitFor();
    await screenshot(page, '94-new-advisory-1280');
    await assertAccessible(page, 'new advisory');

    await page.getByRole('button', { name: 'Publish the advisory' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 6, 'reference, title, severity, date, what to do, products');
    assert.match(await page.title(), /^Error: Add an advisory/);
    await screenshot(page, '95-new-advisory-errors-1280');
    await assertAccessible(page, 'new advisory with errors');
    await summary.getByRole('link', { name: /how severe/ }).click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'severity', 'the summary leads to the first choice');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/advisories/new`);
    const reference = `CC-BROWSER-${Date.now()}`;
    const today = new Date();
    await page.getByLabel('Reference').fill(reference);
    await page.getByLabel('Title').fill('Remote code execution in the print spooler');
    await page.getByLabel('High').check();
    const date = page.getByRole('group', { name: 'Date of publication' });
    await date.getByLabel('Day').fill(`${today.getUTCDate()}`);
    await date.getByLabel('Month').fill('13');
    await date.getByLabel('Year').fill(`${today.getUTCFullYear()}`);
    await page.getByLabel('What organisations must do').fill('Apply the latest cumulative update.');
    // Products are found, then ticked: a catalogue holds too many to list.
    const affects = page.getByRole('group', { name: 'Which products does it affect?' });
    await affects.getByLabel('Find products').fill('windos 10 enterprise');
    await page.getByRole('button', { name: 'Find products' }).click();
    await affects.getByLabel(/^Windows 10 Enterprise/).first().waitFor();
    assert.equal(await page.getByLabel('Title').inputValue(), 'Remote code execution in the print spooler', 'finding keeps what was typed');
    assert.equal(await page.locator('.nhsuk-error-summary').count(), 0, 'finding is not a mistake');
    await assertFitsWidth(page, 'products found at 390 px');
    await assertAccessible(page, 'products found');
    await affects.getByLabel(/^Windows 10 Enterprise/).first().check();
    await page.getByRole('button', { name: 'Publish the advisory' }).click();
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 1, 'only the date');
    assert.match(await summary.innerText(), /Date of publication must be a real date/);
    assert.equal(await page.getByLabel('Title').inputValue(), 'Remote code execution in the print spooler', 'what was typed is kept');
    assert.ok(await page.getByLabel('High').isChecked(), 'the severity chosen is kept');
    await assertFitsWidth(page, 'new advisory with an error at 390 px');
    await screenshot(page, '96-new-advisory-error-390');
    await assertAccessible(page, 'new advisory with an error at 390 px');

    await date.getByLabel('Month').fill(`${today.getUTCMonth() + 1}`);
    await page.getByRole('button', { name: 'Publish the advisory' }).click();
    await page.getByText('The advisory is published').waitFor();
    const id = new URL(page.url()).pathname.split('/').pop();

    await page.getByRole('main').getByRole('link', { name: new RegExp(`^Change ${reference}`) }).click();
    await page.getByRole('heading', { name: `Change ${reference}`, level: 1 }).waitFor();
    await assertFitsWidth(page, 'change advisory at 390 px');
    await screenshot(page, '97-change-advisory-390');
    await assertAccessible(page, 'change advisory');

    // Meanwhile, someone else changes it through the API.
    await changeElsewhere(`/v1/advisories/${id}`, { title: 'Print spooler flaw (updated by someone else)' });

    await page.getByLabel('Title').fill('Print spooler: patch now');
    await page.getByRole('button', { name: 'Save the changes' }).click();
    await summary.waitFor();
    assert.match(await summary.innerText(), /Someone changed this advisory since you opened it/);
    assert.equal(await page.getByLabel('Title').inputValue(), 'Print spooler: patch now', 'what was typed is kept');
    await assertFitsWidth(page, 'changed meanwhile at 390 px');
    await screenshot(page, '98-advisory-changed-meanwhile-390');
    await assertAccessible(page, 'advisory changed meanwhile');

    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: 'Save the changes' }).click();
    await page.getByText('Your changes to the advisory are saved').waitFor();
    await page.getByRole('heading', { name: 'Print spooler: patch now', level: 1 }).waitFor();
    await screenshot(page, '99-advisory-changed-1280');
    await assertAccessible(page, 'advisory after the change');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem) && !refusedWith(409)(problem)));
  } finally {
    await close();
  }
});

test('anyone lists organisations: filtered, sorted and paged on the server, and downloaded, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.officer);
    await page.getByRole('navigation', { name: 'Menu' }).getByRole('link', { name: 'Organisations' }).click();
    await page.getByRole('heading', { name: 'Organisations', level: 1 }).waitFor();
    const rows = page.locator('main table tbody tr');
    assert.equal(await rows.count(), 50, 'fifty a page');
    await page.getByRole('link', { name: /Next page/ }).click();
    await page.getByRole('link', { name: 'First page' }).waitFor();
    assert.ok((await rows.count()) > 0, 'a second page');

    await page.getByLabel('Name or code').fill('leeds');
    await page.getByLabel('Kind').selectOption('trust');
    await page.getByRole('button', { name: 'Show organisations' }).click();
    await page.waitForURL(/q=leeds/);
    assert.match(await page.locator('main table').innerText(), /Leeds Teaching Hospitals NHS Trust/);
    assert.equal(await page.getByLabel('Name or code').inputValue(), 'leeds', 'the filters are kept');
    // Sorted by name from its heading, keeping the filters; the officer's own trust is a link.
    await page.getByRole('link', { name: /^Name/ }).click();
    await page.waitForURL(/sort=name/);
    assert.match(page.url(), /q=leeds/);
    assert.equal(await page.locator('th[aria-sort="ascending"]').innerText(), 'Name');
    await page.getByRole('link', { name: 'Leeds Teaching Hospitals NHS Trust' }).waitFor();
    assert.match(await page.getByRole('link', { name: /Download CSV/ }).getAttribute('href'), /q=leeds&kind=trust&sort=name&format=csv/);
    await screenshot(page, '100-organisations-1280');
    await assertAccessible(page, 'organisations');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/organisations?include_closed=yes`);
    await assertFitsWidth(page, 'organisations at 390 px');
    assert.ok(await page.locator('main tbody .nhsuk-table-responsive__heading').first().isVisible(), 'each cell led by its heading');
    await screenshot(page, '101-organisations-390');
    await assertAccessible(page, 'organisations at 390 px');

    await page.goto(`${BASE}/organisations?kind=hospital`);
    await page.locator('.nhsuk-error-summary').waitFor();
    await assertFitsWidth(page, 'organisations with an error at 390 px');
    await screenshot(page, '102-organisations-error-390');
    await assertAccessible(page, 'organisations with an error at 390 px');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});

test('the national team adds an organisation and changes it: every problem listed, a change made meanwhile is not undone, what ODS owns only shown, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.admin);
    // The national team's menu holds Organisations and still shows Users at desktop width (the
    // reports are one item), not folded under "More".
    await page.getByRole('navigation', { name: 'Menu' }).getByRole('link', { name: 'Users' }).click();
    await page.getByRole('navigation', { name: 'Menu' }).getByRole('link', { name: 'Organisations' }).click();
    await page.getByRole('link', { name: 'Add an organisation' }).click();
    await page.getByRole('heading', { name: 'Add an organisation', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Add the organisation' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 3, 'code, name, kind');
    assert.match(await page.title(), /^Error: Add an organisation/);
    await screenshot(page, '103-new-organisation-errors-1280');
    await assertAccessible(page, 'new organisation with errors');
    await summary.getByRole('link', { name: /what kind/ }).click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'kind', 'the summary leads to the first choice');

    await page.setViewportSize({ width: 390, height: 844 });
    const code = `B${Date.now().toString(36).slice(-6).toUpperCase()}`;
    await page.getByLabel('ODS code').fill(`${code}!`);
    await page.getByLabel('Name', { exact: true }).fill('Browser Test Community Health CIC');
    await page.getByLabel('Other').check();
    await page.getByLabel('Region (optional)').fill('London');
    await page.getByRole('button', { name: 'Add the organisation' }).click();
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 1, 'only the code');
    assert.match(await summary.innerText(), /Enter the ODS code/);
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'Browser Test Community Health CIC', 'what was typed is kept');
    assert.ok(await page.getByLabel('Other').isChecked(), 'the kind chosen is kept');
    await assertFitsWidth(page, 'new organisation with an error at 390 px');
    await screenshot(page, '104-new-organisation-error-390');
    await assertAccessible(page, 'new organisation with an error at 390 px');

    await page.getByLabel('ODS code').fill(code);
    await page.getByRole('button', { name: 'Add the organisation' }).click();
    await page.getByText('The organisation is added.').waitFor();
    await page.getByRole('main').getByRole('link', { name: /^Change\s+Browser Test/ }).click();
    await page.getByRole('heading', { name: 'Change Browser Test Community Health CIC', level: 1 }).waitFor();
    await assertFitsWidth(page, 'change organisation at 390 px');
    await screenshot(page, '105-change-organisation-390');
    await assertAccessible(page, 'change organisation');

    // Meanwhile, someone else changes it through the API.
    await changeElsewhere(`/v1/organisations/${code}`, { region: 'North West' });

    await page.getByLabel('Name', { exact: true }).fill('Browser Test Health CIC');
    await page.getByRole('button', { name: 'Save the changes' }).click();
    await summary.waitFor();
    assert.match(await summary.innerText(), /Someone changed this organisation since you opened it/);
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'Browser Test Health CIC', 'what was typed is kept');
    await assertFitsWidth(page, 'organisation changed meanwhile at 390 px');
    await screenshot(page, '106-organisation-changed-meanwhile-390');
    await assertAccessible(page, 'organisation changed meanwhile');

    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: 'Save the changes' }).click();
    await page.getByText('Your changes to the organisation are saved.').waitFor();
    await page.getByRole('heading', { name: 'Browser Test Health CIC', level: 1 }).waitFor();
    await screenshot(page, '107-organisation-changed-1280');

    // A trust imported from ODS: its name and region are shown, not offered.
    await page.goto(`${BASE}/organisations/RR8/edit`);
    await page.getByRole('heading', { name: 'Change Leeds Teaching Hospitals NHS Trust', level: 1 }).waitFor();
    assert.equal(await page.getByRole('textbox', { name: 'Name', exact: true }).count(), 0, 'the name is not a field');
    await page.getByText(/come from the Organisation Data Service/).waitFor();
    await screenshot(page, '108-change-ods-organisation-1280');
    await assertAccessible(page, 'change an organisation ODS owns');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem) && !refusedWith(409)(problem)));
  } finally {
    await close();
  }
});

test('the national team approves and refuses seat requests, and a trust follows its own, at desktop and 390 px', async () => {
  // A line whose claims need approval, and two claims of RR8's on it, through the API.
  const admin = await apiAs(USERS.admin);
  const officer = await apiAs(USERS.officer);
  const products = await admin('/v1/products?q=MS-O365-E3');
  const product = products.items.find((p) => p.sku === 'MS-O365-E3');
  const agreement = await admin('/v1/agreements', {
    method: 'POST',
    body: JSON.stringify({
      supplier_id: product.supplier_id, reference: 'BROWSER-TEST-APPROVAL', title: 'Office 365 E3 on approval (browser tests)',
      starts_on: '2023-06-01', funding_model: 'central', status: 'active', eligible_kinds: ['trust'],
    }),
  });
  const line = await admin(`/v1/agreements/${agreement.id}/entitlements`, {
    method: 'POST',
    body: JSON.stringify({
      product_id: product.id, tier: 'national_provision', metric: 'per_user', seat_cap: 1000,
      starts_on: '2023-06-01', eligible_kinds: ['trust'], requires_approval: true,
    }),
  });
  const claim = (quantity, reference) => officer(`/v1/entitlements/${line.id}/allocations`, {
    method: 'POST', body: JSON.stringify({ organisation: 'RR8', quantity, reference }),
  });
  const approved = await claim(40, 'BROWSER-APPROVE');
  const refused = await claim(900, 'BROWSER-REFUSE');

  const { page, problems, close } = await openBrowser();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.admin);
    await page.goto(`${BASE}/`);
    await page.getByRole('link', { name: /seat requests? waiting for your decision/ }).click();
    await page.getByRole('heading', { name: 'Seat requests', level: 1 }).waitFor();
    await screenshot(page, '120-seat-requests-1280');
    await assertAccessible(page, 'seat requests');
    await page.getByRole('link', { name: new RegExp(`request ${approved.id}$`) }).click();
    await page.getByRole('heading', { name: /40 seats of Office 365 E3/, level: 1 }).waitFor();
    await screenshot(page, '121-seat-request-1280');
    await assertAccessible(page, 'seat request');
    await page.getByRole('button', { name: 'Approve and allocate 40 seats' }).click();
    await page.getByText('Request approved').waitFor();

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/seat-requests/${refused.id}`);
    await page.getByRole('button', { name: 'Refuse the request' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.match(await summary.innerText(), /Enter why the request is refused/);
    await assertFitsWidth(page, 'seat request with an error at 390 px');
    await screenshot(page, '122-seat-request-error-390');
    await assertAccessible(page, 'seat request with an error');
    await page.getByLabel('Why is it refused?').fill('Office 365 E3 is held for acute trusts this year.');
    await page.getByRole('button', { name: 'Refuse the request' }).click();
    await page.getByText('Request refused').waitFor();
    await page.goto(`${BASE}/seat-requests?status=`);
    await assertFitsWidth(page, 'seat requests at 390 px');
    await screenshot(page, '123-seat-requests-390');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }

  // RR8's officer reads how each was decided.
  const trust = await openBrowser();
  try {
    await signIn(trust.page, USERS.officer);
    await trust.page.goto(`${BASE}/seat-requests/${refused.id}`);
    await trust.page.getByText('Office 365 E3 is held for acute trusts this year.').waitFor();
    assert.equal(await trust.page.getByRole('button', { name: /Approve/ }).count(), 0, 'only the national team decides');
    await assertAccessible(trust.page, 'a refused seat request');
    assertNoConsoleProblems(trust.problems);
  } finally {
    await trust.close();
  }
});

test('the national team adds a product and changes it: every problem listed, dates in three boxes, a change made meanwhile is not undone, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.admin);
    // Products are found from the start page: the national team adds one from there.
    await page.getByRole('main').getByRole('link', { name: 'Add a product' }).click();
    await page.getByRole('heading', { name: 'Add a product', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Add the product' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 3, 'supplier, name, category');
    assert.match(await page.title(), /^Error: Add a product/);
    await screenshot(page, '110-new-product-errors-1280');
    await assertAccessible(page, 'new product with errors');
    await summary.getByRole('link', { name: "Enter the product's name" }).click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'name', 'the summary leads to the field');

    await page.setViewportSize({ width: 390, height: 844 });
    const name = `Browser Test Product ${Date.now().toString(36)}`;
    await page.getByLabel('Supplier', { exact: true }).selectOption({ label: 'Microsoft' });
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Category').fill('Operating System');
    await page.locator('#mainstream_support_ends_on-day').fill('14');
    await page.locator('#mainstream_support_ends_on-month').fill('10');
    await page.locator('#mainstream_support_ends_on-year').fill('2036');
    await page.locator('#extended_support_ends_on-day').fill('13');
    await page.locator('#extended_support_ends_on-month').fill('10');
    await page.locator('#extended_support_ends_on-year').fill('2030');
    await page.getByLabel('DTAC passed').check();
    await page.getByRole('button', { name: 'Add the product' }).click();
    await summary.waitFor();
    assert.equal(await summary.getByRole('link').count(), 2, 'the category and the dates');
    assert.match(await summary.innerText(), /Mainstream support must end on or before extended support/);
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), name, 'what was typed is kept');
    assert.equal(await page.locator('#extended_support_ends_on-year').inputValue(), '2030');
    assert.ok(await page.getByLabel('DTAC passed').isChecked(), 'the box ticked stays ticked');
    await assertFitsWidth(page, 'new product with errors at 390 px');
    await screenshot(page, '111-new-product-errors-390');
    await assertAccessible(page, 'new product with errors at 390 px');

    await page.getByLabel('Category').fill('operating-system');
    await page.locator('#extended_support_ends_on-year').fill('2037');
    await page.getByRole('button', { name: 'Add the product' }).click();
    await page.getByText('The product is added.').waitFor();
    await page.getByRole('main').getByText('14 October 2036').waitFor();
    await page.getByRole('main').getByRole('link', { name: new RegExp(`^Change\\s+${name}`) }).click();
    await page.getByRole('heading', { name: `Change ${name}`, level: 1 }).waitFor();
    await assertFitsWidth(page, 'change product at 390 px');
    await screenshot(page, '112-change-product-390');
    await assertAccessible(page, 'change product');

    // Meanwhile, someone else changes it through the API.
    const id = /\/products\/(\d+)\/edit/.exec(page.url())[1];
    await changeElsewhere(`/v1/products/${id}`, { version: '2' });

    await page.getByLabel('Edition (optional)').fill('Enterprise');
    await page.getByRole('button', { name: 'Save the changes' }).click();
    await summary.waitFor();
    assert.match(await summary.innerText(), /Someone changed this product since you opened it/);
    assert.equal(await page.getByLabel('Edition (optional)').inputValue(), 'Enterprise', 'what was typed is kept');
    await assertFitsWidth(page, 'product changed meanwhile at 390 px');
    await screenshot(page, '113-product-changed-meanwhile-390');
    await assertAccessible(page, 'product changed meanwhile');

    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: 'Save the changes' }).click();
    await page.getByText('Your changes to the product are saved.').waitFor();
    await page.getByRole('heading', { name: `${name} Enterprise`, level: 1 }).waitFor();
    await screenshot(page, '114-product-changed-1280');
    await assertAccessible(page, 'product changed');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem) && !refusedWith(409)(problem)));
  } finally {
    await close();
  }
});

test('an officer asks for a product the search did not find: every problem listed and linked, values kept, then the national team marks it added, at desktop and 390 px', async () => {
  const officer = await openBrowser();
  try {
    const { page, problems } = officer;
    await signIn(page, USERS.officer);
    await page.setViewportSize({ width: 1280, height: 900 });
    await ask(page, 'Zyxwvut Imaging Suite');
    await page.getByRole('heading', { name: /Nothing matches/ }).waitFor();
    await screenshot(page, '170-nothing-found-1280');
    await assertAccessible(page, 'a search that found nothing');
    await page.getByRole('link', { name: 'Ask for a product to be added' }).click();
    await page.getByRole('heading', { name: 'Ask for a product to be added', level: 1 }).waitFor();
    assert.equal(await page.getByLabel('Product name').inputValue(), 'Zyxwvut Imaging Suite', 'the search is kept');
    await screenshot(page, '171-product-request-form-1280');
    await assertAccessible(page, 'the product request form');

    // On a phone from here: every problem at once, each linked to its field, what was typed kept.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByLabel('Product name').fill('');
    await page.getByLabel('Version or edition (optional)').fill('2025');
    await page.getByRole('button', { name: 'Send the request' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    const listed = await summary.innerText();
    for (const message of ["Enter the product's name", "Enter the supplier's name", 'Enter why the organisation needs the product']) {
      assert.ok(listed.includes(message), `${message} in ${listed}`);
    }
    assert.equal(await page.getByLabel('Version or edition (optional)').inputValue(), '2025', 'what was typed is kept');
    await assertFitsWidth(page, 'the product request form with errors at 390 px');
    await summary.getByRole('link', { name: "Enter the supplier's name" }).click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'supplier', 'the summary leads to the field');
    await screenshot(page, '172-product-request-errors-390');
    await assertAccessible(page, 'the product request form with errors at 390 px');

    await page.getByLabel('Product name').fill('Zyxwvut Imaging Suite');
    await page.getByLabel('Supplier').fill('Zyxwvut Medical Ltd');
    await page.getByLabel('Why does the organisation need it?').fill('Radiology reads images from the new scanner with it.');
    await page.getByRole('button', { name: 'Send the request' }).click();
    await page.getByText('Request sent').waitFor();
    await assertFitsWidth(page, 'the product request at 390 px');
    await screenshot(page, '173-product-request-sent-390');
    await assertAccessible(page, 'the product request sent at 390 px');
    await page.goto(`${BASE}/product-requests`);
    await assertFitsWidth(page, 'the product requests at 390 px');
    await screenshot(page, '174-product-requests-390');
    await assertAccessible(page, 'the product requests at 390 px');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await officer.close();
  }

  const national = await openBrowser();
  try {
    const { page, problems } = national;
    await signIn(page, USERS.admin);
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${BASE}/`);
    await page.getByRole('link', { name: /product requests? waiting/ }).click();
    await page.getByRole('heading', { name: 'Product requests', level: 1 }).waitFor();
    await screenshot(page, '175-product-requests-1280');
    await assertAccessible(page, 'the product requests');
    await page.locator('tr', { hasText: 'Zyxwvut Imaging Suite' }).first().getByRole('link').click();
    await page.getByRole('heading', { name: 'Mark it added' }).waitFor();
    await page.getByLabel('Find the product').fill('Windows 10 Enterprise');
    await page.getByRole('button', { name: 'Find products' }).click();
    await page.locator('input[name="product_id"]').first().check();
    await screenshot(page, '176-product-request-finder-1280');
    await assertAccessible(page, 'a product request with the finder');
    await page.getByRole('button', { name: 'Mark it added' }).click();
    await page.getByText('Request marked added').waitFor();
    await screenshot(page, '177-product-request-added-1280');
    await assertAccessible(page, 'a product request marked added');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await assertFitsWidth(page, 'a product request marked added at 390 px');
    await screenshot(page, '178-product-request-added-390');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await national.close();
  }
});

/**
 * The password reset link emailed to `to`, read from the SMTP server's Maildir (run.sh starts
 * aiosmtpd): the text part's link, quoted-printable soft line breaks joined. Waits up to 15 s.
 */
async function emailedResetLink(to) {
  const folder = join(process.env.MAILDIR, 'new');
  const pattern = new RegExp(`${BASE.replace(/[.]/g, '\\.')}/password-reset/([A-Za-z0-9_-]{43})`);
  for (let waited = 0; waited < 15000; waited += 100) {
    const messages = existsSync(folder) ? readdirSync(folder).map((name) => readFileSync(join(folder, name), 'utf8')) : [];
    for (const raw of messages) {
      const joined = raw.replace(/=\r?\n/g, '');
      if (joined.includes(`To: ${to}`) && joined.includes('reset your password')) {
        const found = pattern.exec(joined);
        if (found) return `${BASE}/password-reset/${found[1]}`;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no password reset email to ${to} arrived`);
}

test('a forgotten password is reset through the emailed link: the request, the answer and the new-password form with its errors, accessible at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${BASE}/login`);
    await page.getByRole('link', { name: 'Forgotten your password?' }).click();
    await page.getByRole('heading', { name: 'Reset your password', level: 1 }).waitFor();
    await screenshot(page, '150-password-reset-request-1280');
    await assertAccessible(page, 'the password reset request');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByLabel('Email address').fill('not an address');
    await page.getByRole('button', { name: 'Send a reset link' }).click();
    const requestSummary = page.locator('.nhsuk-error-summary');
    await requestSummary.waitFor();
    assert.match(await requestSummary.innerText(), /Enter an email address in the correct format/);
    assert.equal(await page.getByLabel('Email address').inputValue(), 'not an address', 'what was typed is kept');
    await assertFitsWidth(page, 'the password reset request with an error at 390 px');
    await screenshot(page, '151-password-reset-request-error-390');
    await assertAccessible(page, 'the password reset request with an error at 390 px');

    await page.getByLabel('Email address').fill(USERS.forgotPassword);
    await page.getByRole('button', { name: 'Send a reset link' }).click();
    await page.getByRole('heading', { name: 'Check your email', level: 1 }).waitFor();
    assert.match(
      await page.locator('main').innerText(),
      /If an account exists for that address, we have sent a link to it\. It works for 30 minutes\./,
    );
    await assertFitsWidth(page, 'the answer at 390 px');
    await screenshot(page, '152-password-reset-sent-390');
    await assertAccessible(page, 'the answer at 390 px');
    await page.setViewportSize({ width: 1280, height: 900 });
    await screenshot(page, '153-password-reset-sent-1280');

    const link = await emailedResetLink(USERS.forgotPassword);
    const response = await page.goto(link);
    assert.equal(response.headers()['referrer-policy'], 'no-referrer', 'the token never leaves in a Referer');
    await page.getByRole('heading', { name: 'Choose a new password', level: 1 }).waitFor();
    await page.getByLabel('New password', { exact: true }).fill('password1');
    await page.getByLabel('Confirm new password').fill('pasword1');
    await page.getByRole('button', { name: 'Reset password' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.match(await summary.innerText(), /at least 12 characters/);
    assert.match(await summary.innerText(), /The new passwords do not match/);
    assert.equal(await page.getByLabel('New password', { exact: true }).inputValue(), '', 'passwords are not shown back');
    await screenshot(page, '154-password-reset-new-errors-1280');
    await assertAccessible(page, 'the new-password form with errors');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertFitsWidth(page, 'the new-password form with errors at 390 px');
    await summary.getByRole('link').first().click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'new_password', 'the summary leads to the field');
    await screenshot(page, '155-password-reset-new-errors-390');
    await assertAccessible(page, 'the new-password form with errors at 390 px');

    const chosen = 'a walrus hums beside the quiet harbour';
    await page.getByLabel('New password', { exact: true }).fill(chosen);
    await page.getByLabel('Confirm new password').fill(chosen);
    await page.getByRole('button', { name: 'Reset password' }).click();
    await page.getByText('Your password has been reset').waitFor();
    await screenshot(page, '156-password-reset-done-390');
    await assertAccessible(page, 'signing in after a reset');
    await page.getByLabel('Email address').fill(USERS.forgotPassword);
    await page.getByLabel('Password').fill(chosen);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => !url.pathname.startsWith('/login'));

    // The link worked once.
    const spent = await page.goto(link);
    assert.equal(spent.status(), 404);
    await page.getByRole('heading', { name: 'This link no longer works', level: 1 }).waitFor();
    await page.setViewportSize({ width: 1280, height: 900 });
    await screenshot(page, '157-password-reset-link-spent-1280');
    await assertAccessible(page, 'a spent link');
    assertNoConsoleProblems(
      problems.filter((problem) => !expectedRefusal(problem) && !/status of 404 \(Not Found\)/.test(problem)),
    );
  } finally {
    await close();
  }
});

test('the national team adds an agreement and ends it after checking the answers: every problem listed, values kept, at desktop and 390 px', async () => {
  const { page, problems, close } = await openBrowser();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, USERS.admin);
    await page.getByRole('navigation', { name: 'Menu' }).getByRole('link', { name: 'Agreements' }).click();
    await page.getByRole('link', { name: 'Add an agreement' }).click();
    await page.getByRole('heading', { name: 'Add an agreement', level: 1 }).waitFor();
    const reference = `BT-${Date.now().toString(36).toUpperCase()}`;
    await page.getByLabel('Reference').fill(reference);
    await page.getByLabel('Value (optional)').fill('twelve pounds');
    await page.getByRole('button', { name: 'Add the agreement' }).click();
    const summary = page.locator('.nhsuk-error-summary');
    await summary.waitFor();
    assert.ok((await summary.getByRole('link').count()) >= 3, 'every problem at once');
    assert.match(await page.title(), /^Error: Add an agreement/);
    assert.equal(await page.getByLabel('Reference').inputValue(), reference, 'what was typed is kept');
    assert.equal(await page.getByLabel('Value (optional)').inputValue(), 'twelve pounds');
    await screenshot(page, '130-new-agreement-errors-1280');
    await assertAccessible(page, 'new agreement with errors');

    await page.setViewportSize({ width: 390, height: 844 });
    await assertFitsWidth(page, 'new agreement with errors at 390 px');
    await screenshot(page, '131-new-agreement-errors-390');
    await page.getByLabel('Supplier').selectOption({ index: 1 });
    await page.getByLabel('Title').fill('Browser test agreement');
    await page.locator('#starts_on-day').fill('1');
    await page.locator('#starts_on-month').fill('4');
    await page.locator('#starts_on-year').fill('2024');
    await page.getByLabel('Funding').selectOption('central');
    await page.getByLabel('Status').selectOption('active');
    await page.locator('#kind-trust').check();
    await page.getByLabel('Value (optional)').fill('1,250,000');
    await page.getByLabel('Currency').fill('GBP');
    await page.getByRole('button', { name: 'Add the agreement' }).click();
    await page.getByRole('heading', { name: 'Browser test agreement', level: 1 }).waitFor();
    await assertFitsWidth(page, 'the new agreement at 390 px');

    // Giving it an end date in the past takes it out of force: the answers are shown first.
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('link', { name: /Change the agreement/ }).click();
    await page.locator('#ends_on-day').fill('31');
    await page.locator('#ends_on-month').fill('3');
    await page.locator('#ends_on-year').fill('2025');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Check your answers', level: 1 }).waitFor();
    await screenshot(page, '132-agreement-check-answers-1280');
    await assertAccessible(page, 'check your answers before ending an agreement');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertFitsWidth(page, 'check your answers at 390 px');
    await screenshot(page, '133-agreement-check-answers-390');
    await page.getByRole('button', { name: 'Save the changes' }).click();
    await page.getByRole('heading', { name: 'Browser test agreement', level: 1 }).waitFor();
    assert.match(await page.locator('main').innerText(), /31 March 2025/);
    await screenshot(page, '134-agreement-changed-390');
    await assertAccessible(page, 'the agreement once ended');
    assertNoConsoleProblems(problems.filter((problem) => !expectedRefusal(problem)));
  } finally {
    await close();
  }
});
