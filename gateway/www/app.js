/* The facilities status page: sensors, alarms, the hazard register, events and the daily log,
 * live over /api/stream.
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
    hazards: 'Hazards', show: 'Show', f_active: 'Not closed', f_overdue: 'Overdue', f_open: 'Open',
    f_rectifying: 'Being fixed', f_closed: 'Closed',
    hazardSummary: '{n} not closed · {overdue} overdue · {rect} being fixed',
    noHazards: 'No hazards to show.', hazardError: 'The hazard register cannot be shown.',
    registerInvalid: 'The hazard register is unavailable: nothing can be recorded or changed until it is repaired.',
    recordHazard: 'Record a hazard', recordHazardTitle: 'A hazard found on inspection',
    category: 'Category', floor: 'Floor', zone: 'Zone / room', description: 'What is wrong',
    responsible: 'Responsible', deadline: 'Deadline', verifier: 'Verified by',
    deadlineHint: 'Empty: the usual days for the category.', record: 'Record',
    cat_fire_equipment: 'Fire equipment', cat_evacuation_route: 'Evacuation route',
    cat_electrical: 'Electrical', cat_structure: 'Structure', cat_surroundings: 'Surroundings',
    cat_other: 'Other',
    hz_open: 'open', hz_rectifying: 'being fixed', hz_closed: 'closed', hz_overdue: 'OVERDUE',
    dueIn: 'due {t} (in {d})', overdueBy: 'was due {t} ({d} overdue)', closedOn: 'was due {t}',
    days: '{n} d', hours: '{n} h', minutes_: '{n} min',
    foundBy: 'found {t} by {who}', foundByAlarm: 'opened {t} by alarm {key}',
    nobody: 'nobody yet', responsibleIs: 'responsible: {who}', verifiedBy: 'verified by {who}',
    history: 'History', hideHistory: 'Hide history',
    hzRectifying: 'Fixing started', hzUpdate: 'Update', hzClose: 'Close', hzReopen: 'Reopen',
    ask_hzRectifying: 'Mark {id} as being fixed?', ask_hzUpdate: 'Update {id}',
    ask_hzClose: 'Close {id}: what was done, and who checked it?', ask_hzReopen: 'Reopen {id}?',
    needNoteVerifier: 'A close needs a note and who verified it.',
    nothingChanged: 'Nothing changed.', recorded: 'Recorded {id}',
    hzDone: 'Done: {id} → {status}',
    act_open: 'opened', act_update: 'updated', act_rectifying: 'fixing started',
    act_close: 'closed', act_reopen: 'reopened', act_overdue: 'overdue',
    fld_responsible: 'responsible', fld_deadline: 'deadline', fld_description: 'description',
    fld_verified_by: 'verified by', fld_status: 'status', fld_category: 'category',
    fld_building: 'building', fld_floor: 'floor', fld_zone: 'zone',
    dailyLog: 'Daily log', yesterday: 'Yesterday', otherDay: 'Another day',
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
    hazards: '隐患', show: '显示', f_active: '未销号', f_overdue: '已逾期', f_open: '待整改',
    f_rectifying: '整改中', f_closed: '已销号',
    hazardSummary: '{n} 条未销号 · {overdue} 条逾期 · {rect} 条整改中',
    noHazards: '没有要显示的隐患。', hazardError: '隐患台账无法显示。',
    registerInvalid: '隐患台账不可用：修复之前不能登记或修改隐患。',
    recordHazard: '登记隐患', recordHazardTitle: '巡查发现的隐患',
    category: '类别', floor: '楼层', zone: '区域/房间', description: '隐患描述',
    responsible: '整改责任人', deadline: '整改期限', verifier: '验收人',
    deadlineHint: '不填：按类别的默认天数。', record: '登记',
    cat_fire_equipment: '消防设施', cat_evacuation_route: '疏散通道',
    cat_electrical: '电气', cat_structure: '建筑结构', cat_surroundings: '周边环境',
    cat_other: '其他',
    hz_open: '待整改', hz_rectifying: '整改中', hz_closed: '已销号', hz_overdue: '已逾期',
    dueIn: '期限 {t}（还有 {d}）', overdueBy: '期限 {t}（已逾期 {d}）', closedOn: '期限 {t}',
    days: '{n} 天', hours: '{n} 小时', minutes_: '{n} 分钟',
    foundBy: '{who} 于 {t} 发现', foundByAlarm: '{t} 由报警 {key} 自动登记',
    nobody: '尚未指定', responsibleIs: '责任人：{who}', verifiedBy: '验收人：{who}',
    history: '记录', hideHistory: '收起记录',
    hzRectifying: '开始整改', hzUpdate: '修改', hzClose: '销号', hzReopen: '重新打开',
    ask_hzRectifying: '将 {id} 标为整改中？', ask_hzUpdate: '修改 {id}',
    ask_hzClose: '销号 {id}：做了什么整改，由谁验收？', ask_hzReopen: '重新打开 {id}？',
    needNoteVerifier: '销号需要填写整改说明和验收人。',
    nothingChanged: '没有修改。', recorded: '已登记 {id}',
    hzDone: '完成：{id} → {status}',
    act_open: '登记', act_update: '修改', act_rectifying: '开始整改',
    act_close: '销号', act_reopen: '重新打开', act_overdue: '逾期',
    fld_responsible: '责任人', fld_deadline: '期限', fld_description: '描述',
    fld_verified_by: '验收人', fld_status: '状态', fld_category: '类别',
    fld_building: '楼栋', fld_floor: '楼层', fld_zone: '区域',
    dailyLog: '安全日志', yesterday: '昨天', otherDay: '其他日期',
  },
};
const LANG_KEY = 'campusgw.lang';
const LOW_BATTERY = 20;
const CLASS_ORDER = { alarm: 0, supervisory: 1, trouble: 2 };
const HAZARD_CATEGORIES = ['fire_equipment', 'evacuation_route', 'electrical', 'structure',
  'surroundings', 'other'];
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

const state = {
  lang: 'en', me: null, csrf: null, view: 'sensors',
  sensors: [], sensorsAt: 0, alarms: new Map(), events: [],
  stream: null, refetchTimer: null,
  hazards: [], hazardError: null, hazardHistory: new Map(), hazardsTimer: null,
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
  $('hazard-filter').addEventListener('change', renderHazards);
  $('hazard-new').addEventListener('click', () => showHazardForm(true));
  $('hazard-form-cancel').addEventListener('click', () => showHazardForm(false));
  $('hazard-form').addEventListener('submit', onHazardSubmit);
  $('hd-cancel').addEventListener('click', () => $('hazard-dialog').close('cancel'));
  $('hazard-dialog-form').addEventListener('submit', onHazardDialogSubmit);
  $('log-day').addEventListener('change', renderDaylog);
  setLang(localStorage.getItem(LANG_KEY) || navigator.language);
  try {
    enter(await api('GET', '/api/me'));
  } catch (e) {
    showLogin(e.status === 401 || e.status === 403 ? '' : e.message);
  }
  /* "3 min ago" keeps counting between updates */
  setInterval(() => { renderSensors(); renderAlarms(); }, 15000);
  /* deadlines pass while the page is open */
  setInterval(() => { if (state.me) refreshHazards(); }, 60000);
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
  for (const v of ['sensors', 'alarms', 'hazards', 'events']) $('view-' + v).hidden = v !== name;
  if (name === 'events') { refreshEvents(); renderDaylog(); }
  if (name === 'hazards') refreshHazards();
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
  refreshHazards();
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
    if (/\/overdue$/.test(a.key || '')) refetchHazardsSoon();
  });
  es.addEventListener('hazard', refetchHazardsSoon);
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
  fillCategories();
  if (!state.me) return;
  renderSensors();
  renderAlarms();
  renderEvents();
  renderHazards();
  renderDaylog();
  const conn = $('conn');
  if (conn.dataset.state) conn.textContent = t(conn.dataset.state);
  $('who').textContent = whoText();
}

function whoText() {
  const me = state.me;
  return me.read_only && !me.name ? t('readOnlyNote') : me.name + ' (' + t('role_' + me.role) + ')';
}

/* ---- the hazard register (隐患台账) ---- */

function fillCategories() {
  const select = $('hz-category');
  const keep = select.value;
  select.textContent = '';
  for (const c of HAZARD_CATEGORIES) {
    const o = el('option', null, t('cat_' + c));
    o.value = c;
    select.appendChild(o);
  }
  select.value = keep || 'fire_equipment';
}

function hazardOverdue(h) {
  if (h.status === 'closed') return false;
  const due = Date.parse(h.deadline);
  return !!h.overdue || (!Number.isNaN(due) && Date.now() >= due);
}

async function refreshHazards() {
  try {
    state.hazards = await api('GET', '/api/hazards');
    state.hazardError = null;
  } catch (e) {
    if (e.status === 401) { handleFetchError(e); return; }
    state.hazards = [];
    state.hazardError = { invalid: e.status === 503, text: e.message };
  }
  renderHazards();
  /* an open history follows the hazard */
  for (const id of state.hazardHistory.keys()) loadHazardHistory(id);
}

function refetchHazardsSoon() {
  if (state.hazardsTimer) return;
  state.hazardsTimer = setTimeout(() => { state.hazardsTimer = null; refreshHazards(); }, 500);
}

function hazardRank(h) {
  if (hazardOverdue(h)) return 0;
  return h.status === 'closed' ? 2 : 1;
}

function sortedHazards() {
  const filter = $('hazard-filter').value;
  const due = (h) => { const ms = Date.parse(h.deadline); return Number.isNaN(ms) ? Infinity : ms; };
  return state.hazards.filter((h) => {
    switch (filter) {
      case 'active': return h.status !== 'closed';
      case 'overdue': return hazardOverdue(h);
      case 'all': return true;
      default: return h.status === filter;
    }
  }).sort((a, b) => hazardRank(a) - hazardRank(b) || due(a) - due(b) ||
    String(a.id).localeCompare(String(b.id)));
}

function renderHazards() {
  const list = $('hazard-list');
  if (!list) return;
  const overdue = state.hazards.filter(hazardOverdue).length;
  $('hazard-count').textContent = overdue ? String(overdue) : '';
  const error = $('hazard-error');
  const failure = state.hazardError;
  error.hidden = !failure;
  error.textContent = '';
  if (failure) {
    /* plainly: what it means for the reader, then the gateway's own reason */
    error.appendChild(el('span', 'banner-title', t(failure.invalid ? 'registerInvalid' : 'hazardError')));
    error.appendChild(el('span', 'banner-detail', failure.text));
  }
  $('hazard-new').hidden = !canAct() || !!state.hazardError;
  if (state.hazardError) $('hazard-form').hidden = true;
  const active = state.hazards.filter((h) => h.status !== 'closed');
  $('hazard-summary').textContent = state.hazardError ? '' : t('hazardSummary', {
    n: active.length, overdue, rect: active.filter((h) => h.status === 'rectifying').length,
  });
  const buildings = [...new Set(state.sensors.map((s) => s.location && s.location.building)
    .concat(state.hazards.map((h) => h.building)).filter(Boolean))].sort();
  const dl = $('hz-buildings');
  dl.textContent = '';
  for (const b of buildings) { const o = el('option'); o.value = b; dl.appendChild(o); }

  list.textContent = '';
  if (state.hazardError) return;
  const shown = sortedHazards();
  if (!shown.length) list.appendChild(el('p', 'empty', t('noHazards')));
  for (const h of shown) list.appendChild(hazardCard(h));
}

function span(n) {
  const s = Math.abs(n) / 1000;
  if (s >= 86400) return t('days', { n: Math.floor(s / 86400) });
  if (s >= 3600) return t('hours', { n: Math.floor(s / 3600) });
  return t('minutes_', { n: Math.max(1, Math.floor(s / 60)) });
}

function shortTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso || '');
  return d.toLocaleString(state.lang, {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  });
}

function deadlineText(h) {
  const due = Date.parse(h.deadline);
  if (Number.isNaN(due)) return '';
  const when = shortTime(h.deadline);
  if (h.status === 'closed') return t('closedOn', { t: when });
  const left = due - Date.now();
  return left > 0 ? t('dueIn', { t: when, d: span(left) }) : t('overdueBy', { t: when, d: span(left) });
}

function hazardCard(h) {
  const late = hazardOverdue(h);
  const card = el('article', 'card hazard hazard-' + h.status + (late ? ' hazard-overdue' : ''));
  card.dataset.id = h.id;
  card.dataset.status = h.status;
  card.dataset.overdue = late ? 'true' : 'false';
  const head = el('h3');
  head.appendChild(el('span', 'badge hz-' + h.status, t('hz_' + h.status)));
  if (late) head.appendChild(el('span', 'badge hz-overdue', t('hz_overdue')));
  head.appendChild(el('span', 'badge hz-category', t('cat_' + h.category)));
  head.appendChild(el('span', 'name', h.id));
  card.appendChild(head);
  const where = [h.building, h.floor, h.zone].filter(Boolean).join(' / ');
  if (where) card.appendChild(el('div', 'meta where', where));
  card.appendChild(el('div', 'desc', h.description));
  card.appendChild(el('div', 'meta', [
    t('responsibleIs', { who: h.responsible || t('nobody') }), deadlineText(h),
  ].filter(Boolean).join(' · ')));
  const origin = h.source_alarm
    ? t('foundByAlarm', { t: shortTime(h.found_at), key: h.source_alarm })
    : t('foundBy', { t: shortTime(h.found_at), who: h.found_by || t('system') });
  const more = [origin];
  if (h.verified_by) more.push(t('verifiedBy', { who: h.verified_by }));
  card.appendChild(el('div', 'meta', more.join(' · ')));

  const actions = el('div', 'actions');
  const open = state.hazardHistory.has(h.id);
  const hist = el('button', 'hazard-history-toggle', t(open ? 'hideHistory' : 'history'));
  hist.type = 'button';
  hist.addEventListener('click', () => toggleHazardHistory(h.id));
  actions.appendChild(hist);
  if (canAct()) {
    if (h.status === 'open') actions.appendChild(hazardButton('hzRectifying', h));
    if (h.status !== 'closed') {
      actions.appendChild(hazardButton('hzUpdate', h));
      actions.appendChild(hazardButton('hzClose', h));
    } else {
      actions.appendChild(hazardButton('hzReopen', h));
    }
  }
  card.appendChild(actions);
  if (open) card.appendChild(historyList(state.hazardHistory.get(h.id)));
  return card;
}

/* ---- one hazard's history ---- */

async function loadHazardHistory(id) {
  try {
    const r = await api('GET', '/api/hazards/' + encodeURIComponent(id));
    if (!state.hazardHistory.has(id)) return; /* closed meanwhile */
    state.hazardHistory.set(id, r.history || []);
  } catch (e) {
    if (e.status === 401) { handleFetchError(e); return; }
    state.hazardHistory.delete(id);
    showResult(t('failed', { err: e.message }), true);
  }
  renderHazards();
}

function toggleHazardHistory(id) {
  if (state.hazardHistory.has(id)) {
    state.hazardHistory.delete(id);
    renderHazards();
    return;
  }
  state.hazardHistory.set(id, null); /* loading */
  renderHazards();
  loadHazardHistory(id);
}

function fieldText(name, v) {
  if (name === 'deadline' || name === 'found_at') return shortTime(new Date(v).toISOString());
  if (name === 'status') return t('hz_' + v);
  if (name === 'category') return t('cat_' + v);
  return String(v);
}

function historyList(entries) {
  const ol = el('ol', 'events hazard-history');
  if (!entries) return ol; /* still loading */
  for (const e of entries.slice().reverse()) {
    const li = el('li', 'hazard-entry');
    li.dataset.action = e.action;
    const when = new Date(e.at).toISOString();
    const tm = el('time', null, shortTime(when));
    tm.dateTime = when;
    li.appendChild(tm);
    const what = [t('act_' + e.action), t('by', { who: e.by || t('system') })];
    const shownFields = ['responsible', 'deadline', 'description', 'verified_by'];
    if (e.action !== 'open') shownFields.push('category', 'building', 'floor', 'zone');
    for (const f of shownFields) {
      if (e.fields && f in e.fields && e.fields[f] !== '') {
        what.push(t('fld_' + f) + ' → ' + fieldText(f, e.fields[f]));
      }
    }
    if (e.note) what.push(t('noteIs', { note: e.note }));
    li.appendChild(el('span', null, what.join(' · ')));
    ol.appendChild(li);
  }
  return ol;
}

/* ---- recording a hazard ---- */

function showHazardForm(show) {
  const form = $('hazard-form');
  form.hidden = !show;
  $('hazard-form-error').textContent = '';
  if (show) {
    form.reset();
    fillCategories();
    $('hz-deadline').min = localDay(0);
    $('hz-building').focus();
  }
}

/* A day picked on the page means "by the end of that day", in local time. */
function endOfDay(day) {
  const [y, m, d] = day.split('-').map((x) => parseInt(x, 10));
  return new Date(y, m - 1, d, 23, 59, 59).toISOString();
}

function localDay(offsetDays, from) {
  const d = from ? new Date(from) : new Date();
  d.setDate(d.getDate() + offsetDays);
  const pad = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
}

async function onHazardSubmit(ev) {
  ev.preventDefault();
  const body = {
    category: $('hz-category').value,
    building: $('hz-building').value.trim(),
    description: $('hz-description').value.trim(),
    responsible: $('hz-responsible').value.trim(),
  };
  const floor = $('hz-floor').value.trim();
  const zone = $('hz-zone').value.trim();
  if (floor) body.floor = floor;
  if (zone) body.zone = zone;
  const day = $('hz-deadline').value;
  if (DAY_RE.test(day)) body.deadline = endOfDay(day);
  $('hazard-form-error').textContent = '';
  $('hazard-form-submit').disabled = true;
  try {
    const r = await api('POST', '/api/hazards', body);
    showHazardForm(false);
    showResult(t('recorded', { id: r.hazard }), false);
    await refreshHazards();
  } catch (e) {
    $('hazard-form-error').textContent = t('failed', { err: e.message });
    if (e.status === 401) showLogin('');
  } finally {
    $('hazard-form-submit').disabled = false;
  }
}

/* ---- acting on a hazard: a dialog with what the action needs ---- */

const HAZARD_ACTIONS = {
  hzRectifying: { verb: 'rectifying', note: true },
  hzUpdate: { verb: 'update', note: true, responsible: true, deadline: true, description: true },
  hzClose: { verb: 'close', note: true, verifier: true },
  hzReopen: { verb: 'reopen', note: true, deadline: true },
};

function hazardButton(name, h) {
  const b = el('button', 'action hazard-action action-' + name, t(name));
  b.type = 'button';
  b.dataset.action = name;
  b.addEventListener('click', () => openHazardDialog(name, h));
  return b;
}

function openHazardDialog(name, h) {
  const spec = HAZARD_ACTIONS[name];
  const dlg = $('hazard-dialog');
  $('hd-text').textContent = t('ask_' + name, { id: h.id });
  for (const f of ['responsible', 'deadline', 'description', 'verifier', 'note']) {
    $('hd-' + f + '-row').hidden = !spec[f];
    $('hd-' + f).value = '';
  }
  $('hd-error').textContent = '';
  if (name === 'hzUpdate') {
    $('hd-responsible').value = h.responsible || '';
    $('hd-description').value = h.description || '';
    if (!Number.isNaN(Date.parse(h.deadline))) $('hd-deadline').value = localDay(0, h.deadline);
  }
  $('hd-deadline').min = localDay(0);
  dlg.dataset.action = name;
  dlg.hazard = h;
  dlg.showModal();
}

function hazardDialogBody(name, h) {
  const spec = HAZARD_ACTIONS[name];
  const body = {};
  const note = $('hd-note').value.trim();
  if (spec.note && note) body.note = note;
  const day = $('hd-deadline').value;
  if (name === 'hzUpdate') {
    const responsible = $('hd-responsible').value.trim();
    const description = $('hd-description').value.trim();
    if (responsible && responsible !== h.responsible) body.responsible = responsible;
    if (description && description !== h.description) body.description = description;
    const was = Number.isNaN(Date.parse(h.deadline)) ? '' : localDay(0, h.deadline);
    if (DAY_RE.test(day) && day !== was) body.deadline = endOfDay(day);
    if (!body.responsible && !body.description && !body.deadline) return null;
  }
  if (name === 'hzReopen' && DAY_RE.test(day)) body.deadline = endOfDay(day);
  if (name === 'hzClose') body.verifier = $('hd-verifier').value.trim();
  return body;
}

async function onHazardDialogSubmit(ev) {
  ev.preventDefault();
  const dlg = $('hazard-dialog');
  const name = dlg.dataset.action;
  const h = dlg.hazard;
  const body = hazardDialogBody(name, h);
  if (!body) { $('hd-error').textContent = t('nothingChanged'); return; }
  if (name === 'hzClose' && (!body.note || !body.verifier)) {
    $('hd-error').textContent = t('needNoteVerifier');
    return;
  }
  $('hd-ok').disabled = true;
  try {
    const r = await api('POST', '/api/hazards/' + encodeURIComponent(h.id) + '/' +
      HAZARD_ACTIONS[name].verb, body);
    dlg.close('ok');
    showResult(t('hzDone', { id: h.id, status: t('hz_' + r.status) }), false);
    await refreshHazards();
  } catch (e) {
    $('hd-error').textContent = t('failed', { err: e.message });
    if (e.status === 401) { dlg.close('cancel'); showLogin(''); }
  } finally {
    $('hd-ok').disabled = false;
  }
}

/* ---- the daily safety log: downloads of yesterday's and any other day's ---- */

function setLogLink(a, day, ext) {
  a.hidden = !DAY_RE.test(day);
  if (!a.hidden) {
    a.href = '/api/logs/' + day + '.' + ext;
    a.download = day + '.' + ext;
  }
}

function renderDaylog() {
  const yesterday = localDay(-1);
  setLogLink($('log-yesterday-md'), yesterday, 'md');
  setLogLink($('log-yesterday-csv'), yesterday, 'csv');
  const picker = $('log-day');
  picker.max = localDay(0);
  setLogLink($('log-day-md'), picker.value, 'md');
  setLogLink($('log-day-csv'), picker.value, 'csv');
}

document.addEventListener('DOMContentLoaded', start);
