// @ts-check
// Operations: readiness and who is running, live connections (with disconnect), consumer lag per shard, the
// retry queue, deliveries that ran out of retries, and dead letters. A section that cannot be read says why.
import { ApiError, call, seg } from '../api.js';
import { announce, clearRegionError, h, openDialog, patch, showRegionError } from '../dom.js';
import { ageText, timeText } from '../format.js';

/**
 * @template T
 * @typedef {{ ok: true, value: T } | { ok: false, error: string }} Section
 */
/**
 * @typedef {{ shard: number, group: string, pending: number, unread: number, oldest_unfinished: string | null,
 *   oldest_unfinished_age_ms: number | null }} ShardLag
 * @typedef {{ id: string, shard: number, group: string, stream_id: string, reason: string, at: string,
 *   fields: Record<string, string> }} DeadLetter
 * @typedef {{ at: string,
 *   readiness: Section<{ ready: boolean, checks: Record<string, string> }>,
 *   services: Section<{ edges: { live: string[], dead: string[] },
 *     members: Array<{ group: string, consumer: string, heartbeat_age_ms: number }> }>,
 *   lag: Section<ShardLag[]>,
 *   retries: Section<Record<string, number>>,
 *   failed: Section<{ total: number, items: Array<import('../api.js').Message & { failed_at: string }> }>,
 *   dead_letters: Section<DeadLetter[]> }} Operations
 */

/**
 * @param {import('../main.js').Shell} shell
 * @returns {import('../main.js').View}
 */
export function operationsView(shell) {
  /** @param {string} id */
  const region = (id) => h('div', { class: 'region', id });
  const regions = {
    health: region('ops-health'),
    connections: region('ops-connections'),
    lag: region('ops-lag'),
    retries: region('ops-retries'),
    failed: region('ops-failed'),
    deadLetters: region('ops-dead-letters'),
  };
  /**
   * @param {string} id
   * @param {string} title
   * @param {HTMLElement} content
   */
  const section = (id, title, content) =>
    h('section', { 'aria-labelledby': id, class: 'panel' }, h('h2', { id }, title), content);
  const element = h(
    'div',
    { class: 'operations' },
    h('h1', { tabindex: '-1' }, 'Operations'),
    h(
      'div',
      { class: 'columns' },
      section('health-title', 'Readiness and services', regions.health),
      section('retries-title', 'Retry queue', regions.retries),
    ),
    section('connections-title', 'Live connections', regions.connections),
    section('lag-title', 'Consumer lag per shard', regions.lag),
    section('failed-title', 'Delivery failed (retries ran out)', regions.failed),
    section('dead-title', 'Dead letters', regions.deadLetters),
  );

  return {
    title: 'Operations',
    element,
    async refresh() {
      const [snapshot, connections] = await Promise.allSettled([
        /** @type {Promise<Operations>} */ (call('GET', '/operations')),
        /** @type {Promise<import('../api.js').Page<import('../api.js').Connection>>} */ (
          call('GET', '/connections?limit=500')
        ),
      ]);
      for (const result of [snapshot, connections]) {
        if (result.status === 'rejected' && result.reason instanceof ApiError && result.reason.isSignedOut) {
          throw result.reason;
        }
      }
      if (connections.status === 'fulfilled') {
        clearRegionError(regions.connections);
        patch(regions.connections, connections.value, () => connectionsTable(connections.value, shell));
      } else {
        showRegionError(regions.connections, `Connections could not be read: ${connections.reason.message}`);
      }
      if (snapshot.status === 'rejected') {
        for (const r of [regions.health, regions.lag, regions.retries, regions.failed, regions.deadLetters]) {
          showRegionError(r, `Not read: ${snapshot.reason.message}`);
        }
        throw snapshot.reason;
      }
      const ops = snapshot.value;
      show(regions.health, healthOf(ops), healthPanel);
      show(regions.retries, ops.retries, (counts) => countList(counts));
      show(regions.lag, ops.lag, lagTable);
      show(regions.failed, ops.failed, failedList);
      show(regions.deadLetters, ops.dead_letters, deadLetterList);
    },
  };
}

/**
 * @template T
 * @param {HTMLElement} region
 * @param {Section<T>} result
 * @param {(value: T) => import('../dom.js').Child} build
 */
function show(region, result, build) {
  if (!result.ok) {
    showRegionError(region, `Not read: ${result.error}`);
    return;
  }
  clearRegionError(region);
  patch(region, result.value, () => build(result.value));
}

/**
 * @typedef {{ ready: boolean, checks: Record<string, string>, edges: { live: string[], dead: string[] },
 *   members: Array<{ group: string, consumer: string, heartbeat_age_ms: number }> }} Health
 */

/**
 * @param {Operations} ops
 * @returns {Section<Health>}
 */
function healthOf(ops) {
  if (!ops.readiness.ok) return { ok: false, error: ops.readiness.error };
  if (!ops.services.ok) return { ok: false, error: ops.services.error };
  return { ok: true, value: { ...ops.readiness.value, ...ops.services.value } };
}

/** @param {Health} health */
function healthPanel({ ready, checks, edges, members }) {
  return [
    h(
      'p',
      {},
      'This api: ',
      h(
        'span',
        { class: `state state-${ready ? 'ready' : 'unready'}`, 'data-field': 'api-ready' },
        ready ? 'ready' : 'not ready',
      ),
    ),
    h(
      'ul',
      { class: 'plain' },
      Object.entries(checks).map(([name, value]) =>
        h('li', {}, `${name}: `, h('span', { class: value === 'ok' ? '' : 'bad' }, value)),
      ),
    ),
    h('h3', {}, 'Edges'),
    edges.live.length === 0
      ? h('p', { class: 'muted' }, 'No live edge.')
      : h(
          'ul',
          { class: 'plain mono' },
          edges.live.map((id) => h('li', {}, id, ' ', h('span', { class: 'state state-online' }, 'live'))),
        ),
    edges.dead.length === 0
      ? null
      : h(
          'ul',
          { class: 'plain mono' },
          edges.dead.map((id) =>
            h('li', {}, id, ' ', h('span', { class: 'state state-revoked' }, 'silent, not swept yet')),
          ),
        ),
    h('h3', {}, 'Consumers'),
    members.length === 0
      ? h('p', { class: 'muted' }, 'No persister or dispatcher is beating.')
      : h(
          'ul',
          { class: 'plain' },
          members.map((m) =>
            h(
              'li',
              {},
              `${m.group}: `,
              h('span', { class: 'mono wrap' }, m.consumer),
              ` · beat ${ageText(m.heartbeat_age_ms)} ago`,
            ),
          ),
        ),
  ];
}

/** @param {Record<string, number>} counts */
function countList(counts) {
  return h(
    'dl',
    { class: 'facts' },
    Object.entries(counts).map(([name, count]) =>
      h('div', { 'data-count': name }, h('dt', {}, name), h('dd', {}, String(count))),
    ),
  );
}

/**
 * @param {import('../api.js').Page<import('../api.js').Connection>} page
 * @param {import('../main.js').Shell} shell
 */
function connectionsTable(page, shell) {
  if (page.items.length === 0) return h('p', { class: 'empty' }, 'No live connections.');
  return [
    h(
      'table',
      { class: 'data' },
      h('caption', { class: 'visually-hidden' }, 'Live connections'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Device', 'Edge', 'Connected', 'Connection'].map((name) => h('th', { scope: 'col' }, name)),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
        ),
      ),
      h(
        'tbody',
        {},
        page.items.map((c) =>
          h(
            'tr',
            { 'data-conn-id': c.conn_id },
            h(
              'th',
              { scope: 'row' },
              h('a', { href: `#/shops/${seg(c.shop_id)}` }, c.shop_id),
              ' / ',
              h('span', { class: 'mono' }, c.client_id),
              h('span', { class: 'muted' }, ` (${c.type}${c.legacy ? ', original protocol' : ''})`),
            ),
            h('td', { class: 'mono wrap' }, c.edge_id),
            h('td', {}, h('time', { datetime: c.connected_at }, timeText(c.connected_at))),
            h(
              'td',
              { class: 'mono wrap small' },
              c.conn_id,
              h('br'),
              h('span', { class: 'muted' }, c.remote_addr),
            ),
            h(
              'td',
              { class: 'actions' },
              h(
                'button',
                {
                  type: 'button',
                  class: 'small',
                  'data-key': `disconnect:${c.conn_id}`,
                  'aria-label': `Disconnect ${c.client_id} of ${c.shop_id}`,
                  onclick: () => confirmDisconnect(c, shell),
                },
                'Disconnect',
              ),
            ),
          ),
        ),
      ),
    ),
    page.next_cursor === null ? null : h('p', { class: 'hint' }, 'The first 500 connections are shown.'),
  ];
}

/**
 * @param {import('../api.js').Connection} c
 * @param {import('../main.js').Shell} shell
 */
function confirmDisconnect(c, shell) {
  openDialog({
    title: `Disconnect ${c.client_id}?`,
    body: h('p', {}, `Its socket on ${c.edge_id} is closed (code 4000). The device may reconnect.`),
    confirmLabel: 'Disconnect',
    isDanger: true,
    async onConfirm() {
      await call('POST', `/connections/${seg(c.conn_id)}/disconnect`);
      announce(`Disconnect sent for ${c.client_id}`);
      shell.refreshSoon();
    },
  });
}

/** @param {ShardLag[]} rows */
function lagTable(rows) {
  return h(
    'table',
    { class: 'data compact' },
    h('caption', { class: 'visually-hidden' }, 'Consumer lag per shard'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col', class: 'num' }, 'Shard'),
        h('th', { scope: 'col' }, 'Group'),
        h('th', { scope: 'col', class: 'num' }, 'In flight'),
        h('th', { scope: 'col', class: 'num' }, 'Unread'),
        h('th', { scope: 'col' }, 'Oldest unfinished'),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h(
          'tr',
          {
            'data-shard': row.shard,
            'data-group': row.group,
            class: row.unread + row.pending > 0 ? 'is-busy' : undefined,
          },
          h('td', { class: 'num' }, row.shard),
          h('td', {}, row.group === 'persister' ? 'persister (projection)' : row.group),
          h('td', { class: 'num' }, row.pending),
          h('td', { class: 'num' }, row.unread),
          h(
            'td',
            {},
            row.oldest_unfinished_age_ms === null
              ? h(
                  'span',
                  { class: 'muted' },
                  row.oldest_unfinished === null ? 'caught up' : 'group not created',
                )
              : `${ageText(row.oldest_unfinished_age_ms)} behind`,
          ),
        ),
      ),
    ),
  );
}

/** @param {{ total: number, items: Array<import('../api.js').Message & { failed_at: string }> }} failed */
function failedList(failed) {
  if (failed.total === 0)
    return h('p', { class: 'empty' }, 'None: every message was delivered or is still being retried.');
  return [
    h(
      'p',
      {},
      `${failed.total} message${failed.total === 1 ? '' : 's'} still undelivered after the retry budget; newest first.`,
    ),
    h(
      'ol',
      { class: 'cards' },
      failed.items.map((m) =>
        h(
          'li',
          { class: 'card', 'data-message-id': m.id },
          h(
            'div',
            { class: 'card-head' },
            h('a', { href: `#/shops/${seg(m.shop_id)}` }, m.shop_id),
            h('strong', {}, m.type),
            h('span', {}, `to ${m.to_client_id} · ${m.attempts} attempts · failed ${timeText(m.failed_at)}`),
          ),
          h('p', { class: 'mono wrap small' }, m.id),
        ),
      ),
    ),
  ];
}

/** @param {DeadLetter[]} letters */
function deadLetterList(letters) {
  if (letters.length === 0) return h('p', { class: 'empty' }, 'No dead letters.');
  return h(
    'ol',
    { class: 'cards' },
    letters.map((letter) =>
      h(
        'li',
        { class: 'card' },
        h(
          'div',
          { class: 'card-head' },
          h('time', { datetime: letter.at }, timeText(letter.at)),
          h('span', {}, `shard ${letter.shard} · ${letter.group} · entry ${letter.stream_id}`),
        ),
        h('p', { class: 'bad' }, letter.reason),
        h(
          'details',
          { 'data-key': `dead:${letter.shard}:${letter.id}` },
          h('summary', {}, 'Original fields'),
          h('pre', { class: 'json' }, JSON.stringify(letter.fields, null, 2)),
        ),
      ),
    ),
  );
}
