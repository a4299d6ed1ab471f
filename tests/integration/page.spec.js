// The status page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// run by test_page.py, which owns the gateway and the broker. Talks to it by lines:
//   "STEP <name>" on stdout, then waits for "GO" (or "FAIL <why>") on stdin;
//   "SCREENSHOT <path>" for each picture kept.
// Environment: GW_PAGE_URL (the gateway), GW_PAGE_OUT (where screenshots go), GW_ALARM_KEY,
// GW_PAGE_MODE ("users", the default: GW_OPERATOR / GW_OPERATOR_PASSWORD, GW_VIEWER /
// GW_VIEWER_PASSWORD; or "readonly": a gateway with no users).
'use strict';

const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this from test_page.py)`);
  return v;
};
const BASE = env('GW_PAGE_URL');
const OUT = env('GW_PAGE_OUT');
const KEY = env('GW_ALARM_KEY');
const MODE = process.env.GW_PAGE_MODE || 'users';
const TIMEOUT = 10000;

const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
lines.on('line', (l) => { const w = waiting.shift(); if (w) w(l.trim()); });

async function step(name) {
  process.stdout.write(`STEP ${name}\n`);
  const answer = await new Promise((resolve) => waiting.push(resolve));
  if (answer !== 'GO') throw new Error(`test_page.py after ${name}: ${answer}`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function shot(page, name) {
  const file = path.join(OUT, name + '.png');
  await page.screenshot({ path: file });
  process.stdout.write(`SCREENSHOT ${file}\n`);
}

// Console errors include CSP violations: the page must need nothing inline or from elsewhere.
function watchErrors(page, errors, provoked = /(401|403|409)/) {
  // The refusals this test provokes on purpose are logged as failed loads; anything else counts.
  page.on('console', (m) => {
    const failed = m.text().match(/^Failed to load resource: .* status of (\d+)/);
    if (m.type() === 'error' && !(failed && provoked.test(failed[1]))) {
      errors.push(m.text());
    }
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => { if (r.status() === 404) errors.push('404 ' + r.url()); });
}

async function login(page, name, password) {
  await page.goto(BASE + '/');
  await page.waitForSelector('#login:not([hidden])', { timeout: TIMEOUT });
  await page.fill('#login-name', name);
  await page.fill('#login-password', password);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#tabs:not([hidden])', { timeout: TIMEOUT });
}

// No users configured: the page says read-only, offers no login and no actions.
async function readOnly(browser, errors) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  watchErrors(page, errors);
  await page.goto(BASE + '/');
  await page.waitForSelector(`.card.alarm[data-key="${KEY}"]`, { state: 'attached' });
  check(await page.isVisible('#readonly'), 'the read-only badge');
  check(await page.textContent('#readonly') === '只读', 'zh from the site language');
  check(!(await page.isVisible('#login')) && !(await page.isVisible('#logout')), 'no login, no logout');
  check((await page.$$('button.action')).length === 0, 'no action buttons');
  const refused = await page.evaluate(async (k) =>
    (await fetch(`/api/alarms/${k}/ack`, { method: 'POST', body: '{}' })).status, KEY);
  check(refused === 403, `read-only: the API refuses an ack (${refused})`);
  await shot(page, 'phone-readonly-zh');
  // The stream reconnects by itself, with a marker while it is down.
  await page.waitForSelector('#conn[data-state="live"]');
  await step('stop-gateway');
  await page.waitForSelector('#conn[data-state="reconnecting"]');
  check(await page.textContent('#conn') === '正在重连…', 'the reconnecting marker');
  await step('start-gateway');
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 20000 });
  await ctx.close();
}

// The hazard register on a phone: record a hazard found on an inspection, mark it being fixed,
// close it with a note and a verifier, see its history. Returns the hazard's id.
async function hazards(page) {
  await page.click('#tabs [data-view="hazards"]');
  await page.waitForSelector('#view-hazards:not([hidden])');
  await page.waitForFunction(() => document.getElementById('hazard-summary').textContent !== '');
  check(await page.isVisible('#hazard-new'), 'an operator may record a hazard');
  check(!(await page.isVisible('#hazard-error')), 'no register error');
  await page.click('#hazard-new');
  await page.waitForSelector('#hazard-form:not([hidden])');
  const categories = await page.$$eval('#hz-category option', (os) => os.map((o) => o.textContent));
  check(categories.includes('Evacuation route') && categories.length === 6,
    `category labels: ${categories}`);
  // The form refuses what the gateway refuses: its error shows, nothing is recorded.
  const due = new Date(Date.now() + 3 * 86400000);
  const pad = (n) => String(n).padStart(2, '0');
  const dueDay = `${due.getFullYear()}-${pad(due.getMonth() + 1)}-${pad(due.getDate())}`;
  await page.selectOption('#hz-category', 'evacuation_route');
  await page.fill('#hz-building', 'B');
  await page.fill('#hz-floor', '1');
  await page.fill('#hz-zone', 'west exit');
  await page.fill('#hz-description', 'Exit chained shut <img src=x onerror="window.xss=1">');
  await page.fill('#hz-responsible', '李工');
  await page.fill('#hz-deadline', dueDay);
  await shot(page, 'phone-hazard-form-en');
  await page.click('#hazard-form-submit');
  await page.waitForSelector('#hazard-form', { state: 'hidden' });
  const card = '.card.hazard[data-status="open"]';
  await page.waitForSelector(card);
  const id = await page.getAttribute(card, 'data-id');
  check(/^HZ-\d{8}-\d{3}$/.test(id), `hazard id ${id}`);
  const text = await page.textContent(card);
  check(text.includes('Exit chained shut <img src=x onerror="window.xss=1">'),
    `the description as text: ${text}`);
  check(await page.evaluate(() => window.xss === undefined && !document.querySelector('.card img')),
    'no markup from a description');
  check(text.includes('B / 1 / west exit') && text.includes('Evacuation route') &&
    text.includes('responsible: 李工') && text.includes('found ') && text.includes('by wang'),
  `hazard card: ${text}`);
  check(/due .*\(in (2|3) d\)/.test(text), `the deadline: ${text}`);
  const result = await page.textContent('#result');
  check(result === `Recorded ${id}`, `result: ${result}`);
  await step(`hazard-open ${id}`);

  // Fixing starts.
  const byId = `.card.hazard[data-id="${id}"]`;
  await page.click(`${byId} .action-hzRectifying`);
  await page.waitForSelector('#hazard-dialog[open]');
  check(!(await page.isVisible('#hd-verifier-row')), 'no verifier to start fixing');
  await page.fill('#hd-note', 'chain cut, lock ordered');
  await page.click('#hd-ok');
  await page.waitForSelector(`${byId}[data-status="rectifying"]`);
  check(!(await page.isVisible(`${byId} .action-hzRectifying`)), 'no second "fixing started"');

  // Close: a note and who verified it are required, said in the dialog.
  await page.click(`${byId} .action-hzClose`);
  await page.waitForSelector('#hazard-dialog[open]');
  await page.fill('#hd-note', 'new panic bar fitted');
  await page.click('#hd-ok');
  await page.waitForFunction(() => document.getElementById('hd-error').textContent.includes('verified'));
  check(await page.isVisible('#hazard-dialog'), 'the dialog stays open');
  await page.fill('#hd-verifier', 'zhao');
  await page.click('#hd-ok');
  await page.waitForSelector('#hazard-dialog:not([open])', { state: 'attached' });
  // Closed ones leave the default list ("Not closed") and show under "Closed".
  await page.waitForSelector(byId, { state: 'detached' });
  await page.selectOption('#hazard-filter', 'closed');
  await page.waitForSelector(`${byId}[data-status="closed"]`);
  check((await page.textContent(byId)).includes('verified by zhao'), 'verified by zhao');
  check(await page.isVisible(`${byId} .action-hzReopen`), 'a closed hazard may be reopened');

  // Its history, newest first.
  await page.click(`${byId} .hazard-history-toggle`);
  await page.waitForSelector(`${byId} .hazard-history li`);
  const history = await page.$$eval(`${byId} .hazard-history li`, (els) =>
    els.map((e) => [e.dataset.action, e.textContent]));
  check(history.map((h) => h[0]).join(',') === 'close,rectifying,open',
    `history: ${JSON.stringify(history)}`);
  check(history[0][1].includes('by wang') && history[0][1].includes('verified by → zhao') &&
    history[0][1].includes('new panic bar fitted'), `the close: ${history[0][1]}`);
  check(history[1][1].includes('chain cut, lock ordered'), `the rectifying: ${history[1][1]}`);
  check(history[2][1].includes('responsible → 李工'), `the open: ${history[2][1]}`);
  await shot(page, 'phone-hazard-history-en');
  await step(`hazard-closed ${id}`);
  await page.selectOption('#hazard-filter', 'active');

  // The daily log: yesterday's downloads, and another day from the picker.
  await page.click('#tabs [data-view="events"]');
  const y = new Date(Date.now() - 86400000);
  const yesterday = `${y.getFullYear()}-${pad(y.getMonth() + 1)}-${pad(y.getDate())}`;
  const hrefs = await page.$$eval('#daylog a.download:not([hidden])', (as) => as.map((a) => a.getAttribute('href')));
  check(hrefs.join(' ') === `/api/logs/${yesterday}.md /api/logs/${yesterday}.csv`, `log links: ${hrefs}`);
  const md = await page.evaluate(async (href) => {
    const r = await fetch(href);
    return [r.status, r.headers.get('content-type'), r.headers.get('content-disposition')];
  }, hrefs[0]);
  check(md[0] === 200 && md[1] === 'text/markdown; charset=utf-8' && md[2].startsWith('attachment'),
    `the Markdown download: ${md}`);
  const before = new Date(Date.now() - 5 * 86400000);
  const older = `${before.getFullYear()}-${pad(before.getMonth() + 1)}-${pad(before.getDate())}`;
  await page.fill('#log-day', older);
  await page.waitForSelector('#log-day-csv:not([hidden])');
  check(await page.getAttribute('#log-day-csv', 'href') === `/api/logs/${older}.csv`, 'the picked day');
  const csv = await page.evaluate(async (href) => {
    const r = await fetch(href);
    return [r.status, r.headers.get('content-type')];
  }, `/api/logs/${older}.csv`);
  check(csv[0] === 200 && csv[1] === 'text/csv; charset=utf-8', `the CSV download: ${csv}`);
  await shot(page, 'phone-events-daylog-en');
  return id;
}

// After the gateway found its hazard_log tampered with: the page says so plainly.
async function registerInvalid(browser, errors) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  watchErrors(page, errors, /(401|403|409|503)/);
  await login(page, env('GW_OPERATOR'), env('GW_OPERATOR_PASSWORD'));
  await page.click('#tabs [data-view="hazards"]');
  await page.waitForSelector('#hazard-error:not([hidden])');
  const title = await page.textContent('#hazard-error .banner-title');
  check(title === 'The hazard register is unavailable: nothing can be recorded or changed until ' +
    'it is repaired.', `the register error: ${title}`);
  const detail = await page.textContent('#hazard-error .banner-detail');
  check(/^the hazard register cannot be used: .*seq \d+/.test(detail), `its reason: ${detail}`);
  check(!(await page.isVisible('#hazard-new')), 'nothing can be recorded');
  check((await page.$$('.card.hazard')).length === 0, 'no hazards listed');
  await shot(page, 'phone-hazards-invalid-en');
  await ctx.close();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    // root in a container: Chromium's sandbox needs user namespaces it may not have
    args: ['--no-sandbox'],
  });
  const errors = [];
  try {
    if (MODE === 'readonly') {
      await readOnly(browser, errors);
      check(errors.length === 0, `no console errors (CSP included): ${errors.join(' | ')}`);
      return;
    }
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US' });
    const page = await ctx.newPage();
    page.setDefaultTimeout(TIMEOUT);
    watchErrors(page, errors);

    // A wrong password is refused on the page.
    await page.goto(BASE + '/');
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#login-name', env('GW_OPERATOR'));
    await page.fill('#login-password', 'not-the-password');
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');

    await login(page, env('GW_OPERATOR'), env('GW_OPERATOR_PASSWORD'));
    // Sensors: the offline and the low-battery ones first and highlighted.
    await page.waitForSelector('#sensor-list .card[data-sensor="temp-2"]');
    const cards = await page.$$eval('#sensor-list .card', (els) =>
      els.map((e) => ({ id: e.dataset.sensor, cls: e.className, text: e.textContent })));
    check(cards.length === 3, `3 sensor cards: ${JSON.stringify(cards)}`);
    check(cards[0].id === 'door-9' && cards[0].cls.includes('sensor-offline'),
      `the offline sensor first and highlighted: ${JSON.stringify(cards[0])}`);
    check(cards[1].id === 'temp-2' && cards[1].cls.includes('sensor-lowbatt'),
      `the low-battery sensor next and highlighted: ${JSON.stringify(cards[1])}`);
    check(!/sensor-(offline|lowbatt|fault)/.test(cards[2].cls), `smoke-301 not highlighted: ${cards[2].cls}`);
    check(cards[1].text.includes('temp: 21.5 °C') && cards[1].text.includes('battery 15 %'),
      `values with units and battery: ${cards[1].text}`);
    check(cards[1].text.includes('B / 2 / lab 204'), `location: ${cards[1].text}`);
    check(cards[0].text.includes('never seen'), `never seen: ${cards[0].text}`);
    const summary = await page.textContent('#sensor-summary');
    check(summary === '3 sensors · 1 offline · 1 low battery', `summary: ${summary}`);
    // The filters.
    await page.selectOption('#filter-building', 'A');
    check((await page.$$('#sensor-list .card')).length === 1, 'building filter A: one sensor');
    await page.selectOption('#filter-building', '');
    await page.selectOption('#filter-kind', 'exit_door');
    check((await page.$$('#sensor-list .card')).length === 1, 'kind filter exit_door: one sensor');
    await page.selectOption('#filter-kind', '');
    await page.waitForSelector('#conn[data-state="live"]');
    await shot(page, 'phone-sensors-en');

    // An alarm appears live: no reload (the marker on window survives).
    await page.click('#tabs [data-view="alarms"]');
    await page.evaluate(() => { window.noReloadMarker = true; });
    await step('page-open');
    const card = `.card.alarm[data-key="${KEY}"]`;
    await page.waitForSelector(`${card}[data-state="unacked"]`);
    check(await page.evaluate(() => window.noReloadMarker === true), 'the alarm came without a reload');
    const alarmText = await page.textContent(card);
    check(alarmText.includes('fire alarm') && alarmText.includes('unacknowledged') &&
      /level \d/.test(alarmText), `alarm card: ${alarmText}`);
    check(await page.isVisible(`${card} .action-ack`), 'an operator sees Acknowledge');
    check(await page.isVisible(`${card} .action-shelve`), 'an operator sees Shelve');
    check(await page.isVisible(`${card} .action-oos`), 'an operator sees Out of service');
    await shot(page, 'phone-alarm-en');

    // Cancel does nothing; Confirm with a note acknowledges it.
    await page.click(`${card} .action-ack`);
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-cancel');
    await page.waitForSelector('#confirm:not([open])', { state: 'attached' });
    check(await page.getAttribute(card, 'data-state') === 'unacked', 'cancel leaves it unacked');
    await page.click(`${card} .action-ack`);
    await page.waitForSelector('#confirm[open]');
    await page.fill('#confirm-note', 'checked room 301: toast');
    await page.click('#confirm-ok');
    await page.waitForSelector(`${card}[data-state="acked"]`);
    await page.waitForFunction((k) => {
      const c = document.querySelector(`.card.alarm[data-key="${k}"]`);
      return c && c.textContent.includes('acknowledged by wang') && c.textContent.includes('toast');
    }, KEY);
    const result = await page.textContent('#result');
    check(result.startsWith('Done:') && result.includes('acknowledged'), `result: ${result}`);
    // A second acknowledgement is the API's 409, shown as its error text.
    const again = await page.evaluate(async (k) => {
      const r = await fetch(`/api/alarms/${k}/ack`, { method: 'POST', headers: { 'X-CSRF-Token': state.csrf }, body: '{}' });
      return r.status;
    }, KEY);
    check(again === 409, `a second ack is 409, got ${again}`);
    await step('acked');

    // Events: who did what, newest first.
    await page.click('#tabs [data-view="events"]');
    await page.waitForFunction(() => {
      const first = document.querySelector('#event-list li');
      return first && first.textContent.includes('ack') && first.textContent.includes('by wang');
    });
    const events = await page.$$eval('#event-list li', (els) => els.map((e) => e.textContent));
    check(events.some((e) => e.includes('raise')), `the raise is listed: ${events}`);

    await hazards(page);

    // Language: switched on the page, remembered after a reload, with the session (and CSRF).
    await page.click('#tabs [data-view="sensors"]');
    await page.selectOption('#lang', 'zh-CN');
    const zh = await page.textContent('#sensor-summary');
    check(zh === '共 3 个传感器 · 1 个离线 · 1 个电量低', `zh summary: ${zh}`);
    check(await page.evaluate(() => ago(180)) === '3 分钟前', 'zh: 3 分钟前');
    await page.reload();
    await page.waitForSelector('#sensor-list .card[data-sensor="door-9"]');
    check(await page.textContent('#tabs [data-view="sensors"]') === '传感器', 'zh remembered');
    check(await page.evaluate(() => typeof state.csrf === 'string' && state.csrf.length > 0),
      'the CSRF token comes back from /api/me after a reload');
    check(await page.evaluate(() => { setLang('en'); const s = ago(180); setLang('zh-CN'); return s; })
      === '3 min ago', 'en: 3 min ago');
    await shot(page, 'phone-sensors-zh');
    check(await page.textContent('#tabs [data-view="hazards"] [data-i18n]') === '隐患', 'zh: 隐患');
    await page.click('#tabs [data-view="hazards"]');
    await page.selectOption('#hazard-filter', 'all');
    await page.waitForSelector('.card.hazard[data-status="closed"]');
    check((await page.textContent('.card.hazard[data-status="closed"]')).includes('已销号'),
      'zh: 已销号');
    await shot(page, 'phone-hazards-zh');
    await page.selectOption('#hazard-filter', 'active');
    await page.click('#tabs [data-view="alarms"]');
    await page.waitForSelector(`${card}[data-state="acked"]`);
    await shot(page, 'phone-alarms-zh');
    await page.setViewportSize({ width: 1280, height: 800 });
    await shot(page, 'desktop-alarms-zh');
    await page.selectOption('#lang', 'en');
    await page.click('#tabs [data-view="sensors"]');
    await shot(page, 'desktop-sensors-en');
    await page.click('#logout');
    await page.waitForSelector('#login:not([hidden])');
    await ctx.close();

    // A viewer sees everything but no action buttons, and the API refuses its actions.
    const vctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
    const vpage = await vctx.newPage();
    vpage.setDefaultTimeout(TIMEOUT);
    watchErrors(vpage, errors);
    await login(vpage, env('GW_VIEWER'), env('GW_VIEWER_PASSWORD'));
    await vpage.click('#tabs [data-view="alarms"]');
    await vpage.waitForSelector(card);
    check((await vpage.$$('button.action')).length === 0, 'a viewer sees no action buttons');
    await vpage.click('#tabs [data-view="sensors"]');
    await vpage.waitForSelector('#sensor-list .card');
    check((await vpage.$$('button.action')).length === 0, 'a viewer sees no sensor actions');
    const refused = await vpage.evaluate(async (k) => {
      const me = await (await fetch('/api/me')).json();
      const r = await fetch(`/api/alarms/${k}/shelve`, {
        method: 'POST', headers: { 'X-CSRF-Token': me.csrf }, body: '{"minutes":5}' });
      return [r.status, (await r.json()).error];
    }, KEY);
    check(refused[0] === 403, `a viewer's shelve is 403: ${refused}`);
    // The hazards: listed with their history, no way to change them.
    await vpage.click('#tabs [data-view="hazards"]');
    await vpage.selectOption('#hazard-filter', 'all');
    await vpage.waitForSelector('.card.hazard');
    check(!(await vpage.isVisible('#hazard-new')), 'a viewer records no hazard');
    check((await vpage.$$('.hazard-action')).length === 0, 'a viewer sees no hazard actions');
    check((await vpage.$$('.hazard-history-toggle')).length > 0, 'a viewer may read the history');
    await shot(vpage, 'desktop-viewer-en');
    await vctx.close();

    // The gateway restarted with its hazard_log edited behind its back.
    await step('tamper');
    await registerInvalid(browser, errors);

    check(errors.length === 0, `no console errors (CSP included): ${errors.join(' | ')}`);
  } finally {
    await browser.close();
  }
}

main().then(() => { process.stdout.write('DONE\n'); process.exit(0); }, (e) => {
  process.stdout.write(`ERROR ${String(e && e.stack || e).split('\n').join(' // ')}\n`);
  process.exit(1);
});
