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
function watchErrors(page, errors) {
  // The refusals this test provokes on purpose are logged as failed loads; anything else counts.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource: .* status of (401|403|409)/.test(m.text())) {
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
    await shot(vpage, 'desktop-viewer-en');
    await vctx.close();

    check(errors.length === 0, `no console errors (CSP included): ${errors.join(' | ')}`);
  } finally {
    await browser.close();
  }
}

main().then(() => { process.stdout.write('DONE\n'); process.exit(0); }, (e) => {
  process.stdout.write(`ERROR ${String(e && e.stack || e).split('\n').join(' // ')}\n`);
  process.exit(1);
});
