// The dashboard page: no framework, no build step. It listens to the server's SSE stream
// (`mapping` events: one row's latest MappingState; `gateway` events: the simulator's address and
// table) and renders them; the buttons POST to the server.
/* global document, EventSource, fetch, performance, setInterval */
'use strict';

/** id -> { row, receivedAt }: the latest `mapping` event of each mapping, and when it arrived. */
const mappings = new Map();
const tbody = document.querySelector('#mappings tbody');

// ---- the event stream -------------------------------------------------------------------

const connection = document.getElementById('connection');
const events = new EventSource('/events');
events.addEventListener('open', () => setConnection(true));
events.addEventListener('error', () => setConnection(false)); // EventSource reconnects by itself
events.addEventListener('mapping', (event) => {
  const row = JSON.parse(event.data);
  mappings.set(row.id, { row, receivedAt: performance.now() });
  renderMapping(row.id);
});
events.addEventListener('gateway', (event) => renderGateway(JSON.parse(event.data)));

function setConnection(live) {
  connection.textContent = live ? 'live' : 'reconnecting…';
  connection.classList.toggle('live', live);
}

// ---- the buttons ------------------------------------------------------------------------

document.getElementById('change-ip').addEventListener('click', () => post('/api/external-ip'));

async function post(path) {
  try {
    const response = await fetch(path, { method: 'POST' });
    if (!response.ok) console.warn(`${path}: ${response.status} ${await response.text()}`);
  } catch (error) {
    console.warn(`${path}: ${error}`);
  }
}

// ---- rendering --------------------------------------------------------------------------

function cell(tr, field) {
  return tr.querySelector(`[data-field="${field}"]`);
}

/** Sets a cell's text; flashes it when the text changed (not on the first render, unless `flash` is false). */
function setText(element, text, flash = true) {
  if (element.textContent === text) return;
  const first = element.textContent === '';
  element.textContent = text;
  if (flash && !first) {
    element.classList.remove('flash');
    void element.offsetWidth; // restart the animation
    element.classList.add('flash');
  }
}

function createRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.id = id;
  tr.innerHTML = `
    <td><div class="mapping-name" data-field="name"></div><div class="muted small mono" data-field="request"></div></td>
    <td class="mono small" data-field="backend"></td>
    <td><span class="pill" data-field="status"></span></td>
    <td><span class="mono" data-field="address"></span> <span class="tag" data-field="double-nat" title="the external address is private or CGNAT: another NAT sits upstream" hidden>double NAT</span></td>
    <td><div class="lease"><span data-field="lease"></span><span class="bar"><span data-field="lease-bar"></span></span></div></td>
    <td class="num" data-field="renewals"></td>
    <td class="wrap" data-field="error"></td>
    <td class="num"><button type="button" class="unmap" data-field="unmap">Unmap</button></td>`;
  cell(tr, 'unmap').addEventListener('click', (event) => {
    event.currentTarget.disabled = true;
    event.currentTarget.textContent = 'Unmapping…';
    post(`/api/mappings/${encodeURIComponent(id)}/unmap`);
  });
  tbody.append(tr);
  return tr;
}

function renderMapping(id) {
  const { row } = mappings.get(id);
  const tr = tbody.querySelector(`tr[data-id="${id}"]`) ?? createRow(id);
  const state = row.state;
  const status = state?.status ?? 'mapping';
  tr.dataset.status = status;
  tr.dataset.phase = row.phase;

  setText(cell(tr, 'name'), row.label);
  setText(cell(tr, 'request'), `${row.protocol} ${row.internalPort}`);
  setText(cell(tr, 'backend'), state?.backend ?? '—');

  const pill = cell(tr, 'status');
  pill.textContent = status;
  pill.className = `pill status-${status}`;
  pill.classList.toggle('stopped', row.phase === 'stopped' && !state?.error);

  setText(cell(tr, 'address'), state?.externalIp ? `${state.externalIp}:${state.externalPort}` : '—');
  cell(tr, 'double-nat').hidden = !state?.doubleNat;
  setText(cell(tr, 'renewals'), String(state?.renewals ?? 0), false); // ticks every few seconds: no flash

  const error = cell(tr, 'error');
  if (state?.error) {
    error.className = 'wrap error';
    error.title = state.error.code ?? state.error.name;
    setText(error, state.error.message);
  } else {
    error.className = 'wrap note';
    error.title = '';
    setText(error, row.phase === 'stopped' ? 'stopped: deleted on the gateway' : '—');
  }

  const button = cell(tr, 'unmap');
  button.disabled = row.phase !== 'live';
  button.textContent = { live: 'Unmap', stopping: 'Unmapping…', stopped: 'Unmapped' }[row.phase];
  renderLease(id);
}

/** The granted lease, and a bar for what is left of it since the state arrived (an estimate). */
function renderLease(id) {
  const { row, receivedAt } = mappings.get(id);
  const tr = tbody.querySelector(`tr[data-id="${id}"]`);
  const lifetime = row.state?.lifetimeSeconds;
  const established = row.state && (row.state.status === 'mapped' || row.state.status === 'degraded');
  let text = '—';
  let left = 0;
  if (established && lifetime === 0) {
    text = 'permanent';
    left = 1;
  } else if (established && lifetime) {
    const remaining = Math.max(0, lifetime - (performance.now() - receivedAt) / 1000);
    text = `${lifetime} s · ≈${Math.ceil(remaining)} s left`;
    left = remaining / lifetime;
  }
  cell(tr, 'lease').textContent = text;
  cell(tr, 'lease-bar').style.width = `${Math.round(left * 100)}%`;
}

setInterval(() => {
  for (const id of mappings.keys()) renderLease(id);
}, 250);

function renderGateway(gateway) {
  setText(document.getElementById('external-ip'), gateway.externalIp);
  const body = document.querySelector('#gateway-table tbody');
  body.replaceChildren(
    ...gateway.table.map((m) => {
      const tr = document.createElement('tr');
      tr.dataset.via = m.via;
      tr.dataset.internalPort = String(m.internalPort);
      for (const [text, className] of [
        [m.protocol, ''],
        [String(m.externalPort), 'num mono'],
        [`${m.internalClient}:${m.internalPort}`, 'mono'],
        [m.via, ''],
        [m.remainingSeconds === 0 ? 'permanent' : `${m.remainingSeconds} s`, 'num'],
      ]) {
        const td = document.createElement('td');
        td.textContent = text;
        td.className = className;
        tr.append(td);
      }
      return tr;
    }),
  );
  if (gateway.table.length === 0) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="5" class="empty">no mappings on the gateway</td>';
    body.append(tr);
  }
}
