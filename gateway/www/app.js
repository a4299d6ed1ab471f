/* The facilities status page: sensors, alarms, events, live over /api/stream.
 * Plain ES2017, no framework: the page must work with no internet. Text goes in
 * with textContent only (names come from the config and the sensors). */
'use strict';

const STRINGS = {
  en: {
    sensors: 'Sensors', alarms: 'Alarms', events: 'Events', logout: 'Log out', login: 'Log in',
    loginTitle: 'Log in', userName: 'Name', password: 'Password',
    readOnly: 'read-only', readOnlyNote: 'Read-only: no users are configured.',
    building: 'Building', kind: 'Kind', all: 'All',
    summary: '{n} sensors · {off} offline · {low} low battery',
    summaryFault: ' · {fault} faulty',
    online: 'online', offline: 'offline', fault: 'fault', lowBattery: 'low battery',
    outOfService: 'out of service', battery: 'battery', errors: 'errors: {n}',
    never: 'never seen', lastSeen: 'last seen {ago}', noValues: 'no values',
    justNow: 'just now', secAgo: '{n} s ago', minAgo: '{n} min ago', hAgo: '{n} h ago', dAgo: '{n} d ago',
    noSensors: 'No sensors match.', noAlarms: 'No active alarms.', noEvents: 'Nothing in the last 24 hours.',
    alarmSummary: '{n} active alarms',
    eventsTitle: 'The last 24 hours, newest first',
    class_alarm: 'fire alarm', class_supervisory: 'supervisory', class_trouble: 'trouble',
    st_unacked: 'unacknowledged', st_acked: 'acknowledged', st_rtn_unacked: 'cleared, unacknowledged',
    st_shelved: 'shelved', st_out_of_service: 'out of service', st_normal: 'normal',
    since: 'since {t}', level: 'level {n}', ackedBy: 'acknowledged by {who}', needsReset: 'needs reset',
    shelvedUntil: 'shelved until {t}', noteIs: 'note: {note}', value: 'value: {v}',
    ack: 'Acknowledge', shelve: 'Shelve', unshelve: 'Unshelve', reset: 'Reset',
    oos: 'Out of service', inService: 'Back in service',
    ask_ack: 'Acknowledge {key}?', ask_shelve: 'Shelve {key}?', ask_unshelve: 'Unshelve {key}?',
    ask_reset: 'Reset {key}?', ask_oos: 'Put sensor {id} out of service?',
    ask_inService: 'Put sensor {id} back in service?',
    minutes: 'Minutes', note: 'Note', cancel: 'Cancel', confirm: 'Confirm',
    done: 'Done: {what} → {state}', failed: 'Failed: {err}',
    live: 'live', reconnecting: 'reconnecting…', by: 'by {who}', system: 'system',
    badLogin: 'Wrong name or password.', role_operator: 'operator', role_viewer: 'viewer',
  },
  'zh-CN': {
    sensors: '传感器', alarms: '报警', events: '事件', logout: '退出', login: '登录',
    loginTitle: '登录', userName: '用户名', password: '密码',
    readOnly: '只读', readOnlyNote: '只读：未配置用户。',
    building: '楼栋', kind: '类型', all: '全部',
    summary: '共 {n} 个传感器 · {off} 个离线 · {low} 个电量低',
    summaryFault: ' · {fault} 个故障',
    online: '在线', offline: '离线', fault: '故障', lowBattery: '电量低',
    outOfService: '停用', battery: '电量', errors: '错误：{n} 次',
    never: '从未上线', lastSeen: '最后上报 {ago}', noValues: '无数据',
    justNow: '刚刚', secAgo: '{n} 秒前', minAgo: '{n} 分钟前', hAgo: '{n} 小时前', dAgo: '{n} 天前',
    noSensors: '没有符合条件的传感器。', noAlarms: '没有活动报警。', noEvents: '最近 24 小时没有事件。',
    alarmSummary: '{n} 个活动报警',
    eventsTitle: '最近 24 小时，最新的在前',
    class_alarm: '火警', class_supervisory: '监管', class_trouble: '故障',
    st_unacked: '未确认', st_acked: '已确认', st_rtn_unacked: '已恢复，未确认',
    st_shelved: '已搁置', st_out_of_service: '停用', st_normal: '正常',
    since: '自 {t}', level: '升级级别 {n}', ackedBy: '{who} 已确认', needsReset: '需要复位',
    shelvedUntil: '搁置至 {t}', noteIs: '备注：{note}', value: '值：{v}',
    ack: '确认', shelve: '搁置', unshelve: '取消搁置', reset: '复位',
    oos: '停用', inService: '恢复使用',
    ask_ack: '确认报警 {key}？', ask_shelve: '搁置报警 {key}？', ask_unshelve: '取消搁置 {key}？',
    ask_reset: '复位报警 {key}？', ask_oos: '停用传感器 {id}？', ask_inService: '恢复使用传感器 {id}？',
    minutes: '分钟', note: '备注', cancel: '取消', confirm: '确定',
    done: '完成：{what} → {state}', failed: '失败：{err}',
    live: '实时', reconnecting: '正在重连…', by: '操作人 {who}', system: '系统',
    badLogin: '用户名或密码错误。', role_operator: '操作员', role_viewer: '查看者',
  },
};
const LANG_KEY = 'campusgw.lang';
const LOW_BATTERY = 20;
const CLASS_ORDER = { alarm: 0, supervisory: 1, trouble: 2 };

const state = {
  lang: 'en', me: null, csrf: null, view: 'sensors',
  sensors: [], sensorsAt: 0, alarms: new Map(), events: [],
  stream: null, refetchTimer: null,
};

const $ = (id) => document.getElementById(id);

function t(key, params) {
  const table = STRINGS[state.lang] || STRINGS.en;
  let s = key in table ? table[key] : (STRINGS.en[key] || key);
  for (const [k, v] of Object.entries(params || {})) s = s.split('{' + k + '}').join(String(v));
  return s;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function normLang(l) {
  return l && String(l).toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

function setLang(l) {
  state.lang = normLang(l);
  document.documentElement.lang = state.lang;
  $('lang').value = state.lang;
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  renderAll();
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return t('never');
  const s = Math.max(0, Math.round(seconds));
  if (s < 10) return t('justNow');
  if (s < 60) return t('secAgo', { n: s });
  if (s < 3600) return t('minAgo', { n: Math.floor(s / 60) });
  if (s < 86400) return t('hAgo', { n: Math.floor(s / 3600) });
  return t('dAgo', { n: Math.floor(s / 86400) });
}

function agoSince(iso) {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? '' : ago((Date.now() - ms) / 1000);
}

function localTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso || '') : d.toLocaleString(state.lang);
}

function fmtNum(v) {
  return typeof v === 'number' ? String(Math.round(v * 100) / 100) : String(v);
}

/* ---- talking to the gateway ---- */

async function api(method, path, body) {
  const headers = {};
  if (method === 'POST') {
    headers['Content-Type'] = 'application/json';
    if (state.csrf) headers['X-CSRF-Token'] = state.csrf;
  }
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: method === 'POST' ? JSON.stringify(body || {}) : undefined,
  });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const err = new Error((data && data.error) || (r.status + ' ' + r.statusText));
    err.status = r.status;
    throw err;
  }
  return data;
}

function canAct() {
  return !!(state.me && !state.me.read_only && state.me.role === 'operator');
}

function showResult(text, isError) {
  const p = $('result');
  p.textContent = text;
  p.classList.toggle('error', !!isError);
  p.hidden = false;
  clearTimeout(showResult.timer);
  showResult.timer = setTimeout(() => { p.hidden = true; }, 8000);
}

/* ---- session ---- */

async function start() {
  $('lang').addEventListener('change', (e) => {
    localStorage.setItem(LANG_KEY, e.target.value);
    setLang(e.target.value);
  });
  $('login').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  for (const b of document.querySelectorAll('#tabs [data-view]')) {
    b.addEventListener('click', () => showView(b.dataset.view));
  }
  $('filter-building').addEventListener('change', renderSensors);
  $('filter-kind').addEventListener('change', renderSensors);
  $('confirm-cancel').addEventListener('click', () => $('confirm').close('cancel'));
  setLang(localStorage.getItem(LANG_KEY) || navigator.language);
  try {
    enter(await api('GET', '/api/me'));
  } catch (e) {
    showLogin(e.status === 401 || e.status === 403 ? '' : e.message);
  }
  /* "3 min ago" keeps counting between updates */
  setInterval(() => { renderSensors(); renderAlarms(); }, 15000);
}

function showLogin(message) {
  state.me = null;
  state.csrf = null;
  if (state.stream) { state.stream.close(); state.stream = null; }
  $('conn').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('tabs').hidden = true;
  $('who-row').hidden = true;
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
}

function enter(me) {
  state.me = me;
  state.csrf = me.csrf || null;
  if (!localStorage.getItem(LANG_KEY)) setLang(me.language);
  if (me.site) { $('site-name').textContent = me.site; document.title = me.site; }
  $('login').hidden = true;
  $('tabs').hidden = false;
  $('who-row').hidden = false;
  const anonymous = me.read_only && !me.name;
  $('readonly').hidden = !me.read_only;
  $('who').textContent = whoText();
  $('logout').hidden = anonymous;
  showView(state.view);
  refreshAll();
  connectStream();
}

async function onLogin(ev) {
  ev.preventDefault();
  $('login-error').textContent = '';
  try {
    const me = await api('POST', '/api/login',
      { name: $('login-name').value, password: $('login-password').value });
    $('login-password').value = '';
    enter(me);
  } catch (e) {
    $('login-error').textContent = e.status === 401 ? t('badLogin') : e.message;
  }
}

async function onLogout() {
  try { await api('POST', '/api/logout'); } catch (e) { /* the session is gone either way */ }
  showLogin('');
}

function showView(name) {
  state.view = name;
  for (const b of document.querySelectorAll('#tabs [data-view]')) {
    b.classList.toggle('active', b.dataset.view === name);
  }
  for (const v of ['sensors', 'alarms', 'events']) $('view-' + v).hidden = v !== name;
  if (name === 'events') refreshEvents();
}

/* ---- data ---- */

async function refreshSensors() {
  try {
    state.sensors = await api('GET', '/api/sensors');
    state.sensorsAt = Date.now();
    renderSensors();
  } catch (e) { handleFetchError(e); }
}

async function refreshAlarms() {
  try {
    const list = await api('GET', '/api/alarms');
    state.alarms = new Map(list.map((a) => [a.key, a]));
    renderAlarms();
  } catch (e) { handleFetchError(e); }
}

async function refreshEvents() {
  try {
    state.events = await api('GET', '/api/events');
    renderEvents();
  } catch (e) { handleFetchError(e); }
}

function refreshAll() {
  refreshSensors();
  refreshAlarms();
  refreshEvents();
}

function handleFetchError(e) {
  if (e.status === 401) showLogin('');
}

/* Several telemetry events in a burst make one request. */
function refetchSensorsSoon() {
  if (state.refetchTimer) return;
  state.refetchTimer = setTimeout(() => { state.refetchTimer = null; refreshSensors(); }, 500);
}

function connectStream() {
  if (state.stream) state.stream.close();
  const es = new EventSource('/api/stream');
  state.stream = es;
  const conn = $('conn');
  es.onopen = () => {
    conn.hidden = false;
    conn.textContent = t('live');
    conn.classList.remove('down');
    conn.dataset.state = 'live';
    if (es.wasDown) refreshAll(); /* what happened while we were away */
    es.wasDown = false;
  };
  es.onerror = () => {
    if (state.stream !== es) return;
    es.wasDown = true;
    conn.hidden = false;
    conn.textContent = t('reconnecting');
    conn.classList.add('down');
    conn.dataset.state = 'reconnecting';
    if (es.readyState === EventSource.CLOSED) {
      /* refused (e.g. the session ended): EventSource gives up, so retry by hand */
      setTimeout(async () => {
        if (state.stream !== es) return;
        try { await api('GET', '/api/me'); connectStream(); } catch (e) {
          if (e.status === 401) showLogin(''); else setTimeout(() => es.onerror(), 3000);
        }
      }, 3000);
    }
  };
  es.addEventListener('alarm', (m) => {
    const a = JSON.parse(m.data);
    if (!a.state || a.state === 'normal') state.alarms.delete(a.key);
    else state.alarms.set(a.key, a);
    renderAlarms();
    refetchSensorsSoon(); /* its alarm count */
  });
  es.addEventListener('event', (m) => {
    state.events.push(JSON.parse(m.data));
    renderEvents();
  });
  es.addEventListener('telemetry', refetchSensorsSoon);
  es.addEventListener('health', refetchSensorsSoon);
}

/* ---- sensors ---- */

function sensorFlags(s) {
  const lowBattery = typeof s.battery === 'number' && s.battery < LOW_BATTERY;
  return {
    offline: s.state === 'offline', fault: s.state === 'fault', lowBattery, oos: !!s.out_of_service,
  };
}

function sensorRank(s) {
  const f = sensorFlags(s);
  if (f.offline || f.fault) return 0;
  if (f.lowBattery) return 1;
  return 2;
}

function fillSelect(select, values) {
  const keep = select.value;
  select.textContent = '';
  const all = el('option', null, t('all'));
  all.value = '';
  select.appendChild(all);
  for (const v of values) {
    const o = el('option', null, v);
    o.value = v;
    select.appendChild(o);
  }
  select.value = values.includes(keep) ? keep : '';
}

function renderSensors() {
  const list = $('sensor-list');
  if (!list) return;
  const all = state.sensors;
  const building = (s) => (s.location && s.location.building) || '';
  fillSelect($('filter-building'), [...new Set(all.map(building).filter(Boolean))].sort());
  fillSelect($('filter-kind'), [...new Set(all.map((s) => s.kind))].sort());
  const fb = $('filter-building').value;
  const fk = $('filter-kind').value;
  const shown = all.filter((s) => (!fb || building(s) === fb) && (!fk || s.kind === fk))
    .sort((a, b) => sensorRank(a) - sensorRank(b) || a.id.localeCompare(b.id));

  const flags = shown.map(sensorFlags);
  let text = t('summary', {
    n: shown.length, off: flags.filter((f) => f.offline).length,
    low: flags.filter((f) => f.lowBattery).length,
  });
  const faults = flags.filter((f) => f.fault).length;
  if (faults) text += t('summaryFault', { fault: faults });
  $('sensor-summary').textContent = text;

  const elapsed = (Date.now() - state.sensorsAt) / 1000;
  list.textContent = '';
  if (!shown.length) list.appendChild(el('p', 'empty', t('noSensors')));
  for (const s of shown) list.appendChild(sensorCard(s, sensorFlags(s), elapsed));
}

function sensorCard(s, f, elapsed) {
  const card = el('article', 'card sensor');
  card.dataset.sensor = s.id;
  card.dataset.state = s.state;
  if (f.offline) card.classList.add('sensor-offline');
  if (f.fault) card.classList.add('sensor-fault');
  if (f.lowBattery) card.classList.add('sensor-lowbatt');
  if (f.oos) card.classList.add('sensor-oos');

  const h = el('h3');
  h.appendChild(el('span', 'name', s.id));
  h.appendChild(el('span', 'badge state state-' + s.state, t(s.state)));
  if (f.lowBattery) h.appendChild(el('span', 'badge badge-lowbatt', t('lowBattery')));
  if (f.oos) h.appendChild(el('span', 'badge', t('outOfService')));
  card.appendChild(h);

  const loc = s.location ? [s.location.building, s.location.floor, s.location.zone]
    .filter((x) => x).join(' / ') : '';
  card.appendChild(el('div', 'meta', [s.kind, loc].filter(Boolean).join(' · ')));

  const age = s.age_s === null || s.age_s === undefined ? null : s.age_s + elapsed;
  const meta = [age === null ? t('never') : t('lastSeen', { ago: ago(age) })];
  if (typeof s.battery === 'number') meta.push(t('battery') + ' ' + fmtNum(s.battery) + ' %');
  const signal = [];
  if (typeof s.rssi === 'number') signal.push('RSSI ' + fmtNum(s.rssi) + ' dBm');
  if (typeof s.snr === 'number') signal.push('SNR ' + fmtNum(s.snr) + ' dB');
  if (s.source === 'modbus' || (!signal.length && s.errors)) signal.push(t('errors', { n: s.errors }));
  if (signal.length) meta.push(signal.join(' '));
  if (s.fault) meta.push(t('fault') + ': ' + s.fault);
  card.appendChild(el('div', 'meta', meta.join(' · ')));

  const vals = [];
  for (const [k, v] of Object.entries(s.values || {})) {
    const unit = s.units && s.units[k] ? ' ' + s.units[k] : '';
    vals.push(k + ': ' + fmtNum(v) + unit);
  }
  for (const [k, v] of Object.entries(s.faults || {})) vals.push(k + ': ' + v);
  card.appendChild(el('div', 'values', vals.length ? vals.join(' · ') : t('noValues')));

  if (canAct()) {
    const actions = el('div', 'actions');
    if (f.oos) actions.appendChild(actionButton('inService', { id: s.id }));
    else actions.appendChild(actionButton('oos', { id: s.id }));
    card.appendChild(actions);
  }
  return card;
}

/* ---- alarms ---- */

function classRank(a) {
  return a.class in CLASS_ORDER ? CLASS_ORDER[a.class] : 9;
}

function sortedAlarms() {
  return [...state.alarms.values()].sort((a, b) =>
    classRank(a) - classRank(b) ||
    String(a.raised_at).localeCompare(String(b.raised_at)));
}

function renderAlarms() {
  const list = $('alarm-list');
  const alarms = sortedAlarms();
  $('alarm-count').textContent = alarms.length ? String(alarms.length) : '';
  $('alarm-summary').textContent = t('alarmSummary', { n: alarms.length });
  list.textContent = '';
  if (!alarms.length) list.appendChild(el('p', 'empty', t('noAlarms')));
  for (const a of alarms) list.appendChild(alarmCard(a));
}

function alarmCard(a) {
  const card = el('article', 'card alarm alarm-' + a.class + ' alarm-' + a.state);
  card.dataset.key = a.key;
  card.dataset.state = a.state;
  const h = el('h3');
  h.appendChild(el('span', 'badge class-' + a.class, t('class_' + a.class)));
  h.appendChild(el('span', 'name', a.rule || a.key));
  h.appendChild(el('span', 'badge alarm-state', t('st_' + a.state)));
  card.appendChild(h);
  const sensor = state.sensors.find((s) => s.id === a.sensor);
  const loc = sensor && sensor.location ? [sensor.location.building, sensor.location.floor,
    sensor.location.zone].filter((x) => x).join(' / ') : '';
  card.appendChild(el('div', 'meta', [a.sensor, loc].filter(Boolean).join(' · ')));
  const meta = [t('since', { t: localTime(a.raised_at) }) + ' (' + agoSince(a.raised_at) + ')',
    t('level', { n: a.level || 0 })];
  if (a.value !== null && a.value !== undefined) meta.push(t('value', { v: fmtNum(a.value) }));
  card.appendChild(el('div', 'meta', meta.join(' · ')));
  const more = [];
  if (a.acked_by) more.push(t('ackedBy', { who: a.acked_by }));
  if (a.note) more.push(t('noteIs', { note: a.note }));
  if (a.shelved_until) more.push(t('shelvedUntil', { t: localTime(a.shelved_until) }));
  if (a.needs_reset) more.push(t('needsReset'));
  if (more.length) card.appendChild(el('div', 'meta more', more.join(' · ')));

  if (canAct()) {
    const actions = el('div', 'actions');
    const st = a.state;
    const target = { key: a.key, id: a.sensor };
    if (st === 'unacked' || st === 'rtn_unacked') actions.appendChild(actionButton('ack', target));
    if (st === 'unacked' || st === 'acked' || st === 'rtn_unacked') {
      actions.appendChild(actionButton('shelve', target));
    }
    if (st === 'shelved') actions.appendChild(actionButton('unshelve', target));
    if (a.needs_reset) actions.appendChild(actionButton('reset', target));
    if (!a.system) {
      actions.appendChild(actionButton(st === 'out_of_service' ? 'inService' : 'oos', target));
    }
    card.appendChild(actions);
  }
  return card;
}

/* ---- actions: a button, a confirmation dialog, the request, the answer shown ---- */

const ACTIONS = {
  ack: { path: (x) => '/api/alarms/' + x.key + '/ack', note: true, ask: 'ask_ack' },
  shelve: { path: (x) => '/api/alarms/' + x.key + '/shelve', note: true, minutes: true, ask: 'ask_shelve' },
  unshelve: { path: (x) => '/api/alarms/' + x.key + '/unshelve', ask: 'ask_unshelve' },
  reset: { path: (x) => '/api/alarms/' + x.key + '/reset', ask: 'ask_reset' },
  oos: { path: (x) => '/api/sensors/' + encodeURIComponent(x.id) + '/out-of-service', note: true, ask: 'ask_oos' },
  inService: { path: (x) => '/api/sensors/' + encodeURIComponent(x.id) + '/in-service', note: true, ask: 'ask_inService' },
};

function actionButton(name, target) {
  const b = el('button', 'action action-' + name, t(name));
  b.type = 'button';
  b.dataset.action = name;
  b.addEventListener('click', () => confirmAction(name, target));
  return b;
}

function confirmAction(name, target) {
  const spec = ACTIONS[name];
  const dlg = $('confirm');
  $('confirm-text').textContent = t(spec.ask, target);
  $('confirm-note-row').hidden = !spec.note;
  $('confirm-minutes-row').hidden = !spec.minutes;
  $('confirm-note').value = '';
  $('confirm-minutes').value = '60';
  dlg.dataset.action = name;
  dlg.returnValue = '';
  dlg.onclose = () => {
    if (dlg.returnValue !== 'ok') return;
    const body = {};
    const note = $('confirm-note').value.trim();
    if (spec.note && note) body.note = note;
    if (spec.minutes) body.minutes = parseInt($('confirm-minutes').value, 10);
    runAction(name, spec.path(target), body, target);
  };
  dlg.showModal();
}

async function runAction(name, path, body, target) {
  try {
    const r = await api('POST', path, body);
    showResult(t('done', { what: t(name) + ' ' + (target.key || target.id),
      state: t('st_' + r.state) === 'st_' + r.state ? r.state : t('st_' + r.state) }), false);
    if (r.key && state.alarms.has(r.key)) {
      /* the stream brings the full record; show the new state at once */
      state.alarms.get(r.key).state = r.state;
      renderAlarms();
    }
    refreshSensors();
  } catch (e) {
    showResult(t('failed', { err: e.message }), true);
    if (e.status === 401) showLogin('');
  }
}

/* ---- events ---- */

function eventTime(e) {
  return e.ts || (e.transition === 'ack' && e.acked_at) ||
    ((e.transition === 'clear' || e.transition === 'rtn') && e.cleared_at) || e.raised_at || e.since;
}

function renderEvents() {
  const list = $('event-list');
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  const events = state.events.filter((e) => {
    const ms = Date.parse(eventTime(e));
    return Number.isNaN(ms) || ms >= dayAgo;
  }).slice().sort((a, b) => (b.seq || 0) - (a.seq || 0));
  list.textContent = '';
  if (!events.length) list.appendChild(el('li', 'empty', t('noEvents')));
  for (const e of events.slice(0, 500)) {
    const li = el('li', 'event');
    li.dataset.transition = e.transition || e.cmd || '';
    const when = eventTime(e);
    const tm = el('time', null, when ? localTime(when) : '');
    if (when) tm.dateTime = when;
    li.appendChild(tm);
    const what = [e.transition || e.cmd || e.type || '?', e.key || e.sensor || ''];
    if (e.state) what.push('→ ' + t('st_' + e.state));
    what.push(e.by ? t('by', { who: e.by }) : t('by', { who: t('system') }));
    if (e.note) what.push(t('noteIs', { note: e.note }));
    li.appendChild(el('span', null, what.filter(Boolean).join(' ')));
    list.appendChild(li);
  }
}

function renderAll() {
  if (!state.me) return;
  renderSensors();
  renderAlarms();
  renderEvents();
  const conn = $('conn');
  if (conn.dataset.state) conn.textContent = t(conn.dataset.state);
  $('who').textContent = whoText();
}

function whoText() {
  const me = state.me;
  return me.read_only && !me.name ? t('readOnlyNote') : me.name + ' (' + t('role_' + me.role) + ')';
}

document.addEventListener('DOMContentLoaded', start);
