// @ts-check
// A shop's messages as the REST API pages them (newest first, a state filter, cursors), each with its attempts
// and timestamps, and the Handle action (MessageHandled with a business status).
import { call, seg } from '../api.js';
import { announce, clearRegionError, h, openDialog, patch, showRegionError } from '../dom.js';
import { timeText } from '../format.js';

const PAGE_SIZE = 20;
const STATES = ['all', 'pending', 'delivered', 'handled'];

/**
 * @param {string} shopId
 * @param {import('../main.js').Shell} shell
 */
export function messagesSection(shopId, shell) {
  // All states by default (the REST default is pending): a live view should show a message turn delivered.
  let state = 'all';
  /** Cursors of the pages before the shown one; the last is the shown page's (null: the first page). */
  /** @type {Array<string | null>} */
  const cursors = [null];
  /** @type {string | null} */
  let nextCursor = null;

  const region = h('div', { class: 'region', id: 'messages' });
  const filter = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { id: 'message-state' },
      STATES.map((s) => h('option', { value: s, selected: s === state }, s)),
    )
  );
  filter.addEventListener('change', () => {
    state = filter.value;
    cursors.splice(0, cursors.length, null);
    shell.refreshSoon();
  });
  const newer = h('button', { type: 'button', 'data-key': 'page-newer', disabled: true }, '← Newer');
  const older = h('button', { type: 'button', 'data-key': 'page-older', disabled: true }, 'Older →');
  const pageLabel = h('span', { class: 'page-label', 'aria-live': 'polite' }, 'Page 1');
  newer.addEventListener('click', () => {
    if (cursors.length > 1) cursors.pop();
    shell.refreshSoon();
  });
  older.addEventListener('click', () => {
    if (nextCursor !== null) cursors.push(nextCursor);
    shell.refreshSoon();
  });

  const element = h(
    'section',
    { 'aria-labelledby': 'messages-title' },
    h('h2', { id: 'messages-title' }, 'Messages'),
    h(
      'form',
      { class: 'inline-form', onsubmit: (/** @type {Event} */ e) => e.preventDefault() },
      h('label', { for: 'message-state' }, 'Show'),
      filter,
    ),
    region,
    h('nav', { class: 'pager', 'aria-label': 'Message pages' }, newer, pageLabel, older),
  );

  async function refresh() {
    const query = new URLSearchParams({ state, limit: String(PAGE_SIZE) });
    const cursor = cursors.at(-1);
    if (cursor) query.set('cursor', cursor);
    try {
      /** @type {import('../api.js').Page<import('../api.js').Message>} */
      const page = await call('GET', `/shops/${seg(shopId)}/messages?${query}`);
      const pendingIds = page.items.filter((m) => m.state === 'pending').map((m) => m.id);
      /** @type {Record<string, number>} */
      const pushes =
        pendingIds.length === 0
          ? {}
          : await call('GET', `/shops/${seg(shopId)}/pushes?ids=${pendingIds.join(',')}`);
      nextCursor = page.next_cursor;
      toggle(newer, cursors.length > 1);
      toggle(older, nextCursor !== null);
      pageLabel.textContent = `Page ${cursors.length}`;
      clearRegionError(region);
      patch(region, { items: page.items, pushes }, () => messageList(page.items, pushes, shell));
    } catch (err) {
      showRegionError(region, `Messages could not be read: ${/** @type {Error} */ (err).message}`);
      throw err;
    }
  }

  return { element, refresh };
}

/**
 * @param {HTMLElement} button
 * @param {boolean} isEnabled
 */
function toggle(button, isEnabled) {
  if (isEnabled) button.removeAttribute('disabled');
  else button.setAttribute('disabled', '');
}

/**
 * @param {import('../api.js').Message[]} messages
 * @param {Record<string, number>} pushes  live push counts of the pending ones
 * @param {import('../main.js').Shell} shell
 */
function messageList(messages, pushes, shell) {
  if (messages.length === 0) return h('p', { class: 'empty' }, 'No messages.');
  return h(
    'ol',
    { class: 'cards' },
    messages.map((message) => messageCard(message, pushes[message.id], shell)),
  );
}

/**
 * @param {import('../api.js').Message} m
 * @param {number | undefined} pushes  how often a pending message has been pushed so far
 * @param {import('../main.js').Shell} shell
 */
function messageCard(m, pushes, shell) {
  const table = m.table_id === null ? '' : ` · table ${m.table_id}`;
  return h(
    'li',
    { class: 'card', 'data-message-id': m.id },
    h(
      'div',
      { class: 'card-head' },
      h('span', { class: `state state-${m.state}`, 'data-field': 'state' }, m.state),
      h('strong', {}, m.type),
      h('span', {}, `${table} · ${m.from_client_id ?? 'back office'} → ${m.to_client_id}`),
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          'data-key': `handle:${m.id}`,
          'aria-label': `Handle message ${m.id}`,
          onclick: () => confirmHandle(m, shell),
        },
        'Handle',
      ),
    ),
    h(
      'dl',
      { class: 'facts' },
      fact('Created', stamp(m.created_at)),
      fact(
        'Delivered',
        // SPEC §9.1: written to a legacy device's socket is not the same as acked by the device.
        m.delivered_via === 'socket-write'
          ? h('span', {}, stamp(m.delivered_at), ' (socket write, no ack)')
          : stamp(m.delivered_at),
      ),
      fact('Handled', stamp(m.handled_at)),
      // SPEC §10: every cashier's copy of a request shows who handled it.
      fact('Handled by', handlerText(m.handled_by)),
      // The projection counts attempts when the message is acked or gives up; until then the inbox knows.
      fact('Attempts', pushes === undefined ? String(m.attempts) : `${Math.max(pushes, m.attempts)} so far`),
      fact('Status', String(m.status)),
    ),
    h(
      'details',
      { 'data-key': `details:${m.id}` },
      h('summary', {}, 'Message ', h('span', { class: 'mono wrap' }, m.id)),
      h(
        'pre',
        { class: 'json' },
        JSON.stringify({ title: m.title, data: m.data, user_info: m.user_info }, null, 2),
      ),
    ),
  );
}

/** @param {import('../api.js').Message['handled_by']} by */
function handlerText(by) {
  if (by === null) return h('span', { class: 'muted' }, '—');
  return by.kind === 'device' ? `cashier ${by.client_id}` : 'back office';
}

/**
 * @param {string} term
 * @param {Node | string} value
 */
function fact(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

/** @param {string | null} iso */
function stamp(iso) {
  return iso === null ? h('span', { class: 'muted' }, '—') : h('time', { datetime: iso }, timeText(iso));
}

/**
 * @param {import('../api.js').Message} m
 * @param {import('../main.js').Shell} shell
 */
function confirmHandle(m, shell) {
  const status = /** @type {HTMLInputElement} */ (
    h('input', { id: 'handle-status', type: 'number', step: '1', required: true, value: String(m.status) })
  );
  openDialog({
    title: 'Handle message',
    body: [
      h('p', {}, `${m.type} from ${m.from_client_id ?? 'back office'} to ${m.to_client_id}, now ${m.state}.`),
      h('p', { class: 'mono wrap small' }, m.id),
      h('label', { for: 'handle-status' }, 'Business status'),
      status,
    ],
    confirmLabel: 'Handle',
    async onConfirm() {
      const value = Number(status.value);
      if (!Number.isInteger(value)) throw new Error('The status is a whole number.');
      // SPEC §10: a request someone else handled first answers 409 naming them; the error says so.
      await call('POST', `/messages/${seg(m.id)}/handle`, { status: value });
      announce(`Request handled with status ${value}, for every cashier's copy`);
      shell.refreshSoon();
    },
  });
}
