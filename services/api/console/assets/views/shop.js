// @ts-check
// One shop: its devices, its messages and its recent events as a timeline (newest first). Each part is read on
// its own, so one that cannot be read shows why and the others keep updating.
import { ApiError, call, seg } from '../api.js';
import { clearRegionError, h, patch, showRegionError } from '../dom.js';
import { eventSummary, timeText } from '../format.js';
import { devicesSection } from './shop-devices.js';
import { messagesSection } from './shop-messages.js';

const TIMELINE_LENGTH = 50;

/**
 * @typedef {{ stream_id: string, is_archived: boolean,
 *   event: { id: string, type: string, at: string, source: string, data: Record<string, any> } }} TimelineEntry
 */

/**
 * @param {string} shopId
 * @param {import('../main.js').Shell} shell
 * @returns {import('../main.js').View}
 */
export function shopView(shopId, shell) {
  const devices = devicesSection(shopId, shell);
  const messages = messagesSection(shopId, shell);
  const timeline = timelineSection(shopId);
  const element = h(
    'div',
    { class: 'shop' },
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Shops'), ' / ', shopId),
    h('h1', { tabindex: '-1' }, 'Shop ', h('span', { class: 'mono' }, shopId)),
    devices.element,
    h('div', { class: 'columns' }, messages.element, timeline.element),
  );
  return {
    title: `Shop ${shopId}`,
    element,
    async refresh() {
      const results = await Promise.allSettled([devices.refresh(), messages.refresh(), timeline.refresh()]);
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
      // Each part already shows its own failure; the shell needs to hear of a lost session, or of all failing.
      const signedOut = failures.find((err) => err instanceof ApiError && err.isSignedOut);
      if (signedOut) throw signedOut;
      if (failures.length === results.length) throw failures[0];
    },
  };
}

/** @param {string} shopId */
function timelineSection(shopId) {
  const region = h('div', { class: 'region', id: 'timeline' });
  const element = h(
    'section',
    { 'aria-labelledby': 'timeline-title' },
    h('h2', { id: 'timeline-title' }, 'Recent events'),
    region,
  );
  async function refresh() {
    try {
      /** @type {{ items: TimelineEntry[], has_gap: boolean }} */
      const timeline = await call('GET', `/shops/${seg(shopId)}/timeline?limit=${TIMELINE_LENGTH}`);
      clearRegionError(region);
      patch(region, timeline, () => timelineList(timeline.items, timeline.has_gap));
    } catch (err) {
      showRegionError(region, `Events could not be read: ${/** @type {Error} */ (err).message}`);
      throw err;
    }
  }
  return { element, refresh };
}

/**
 * @param {TimelineEntry[]} items
 * @param {boolean} hasGap
 */
function timelineList(items, hasGap) {
  if (items.length === 0) return h('p', { class: 'empty' }, 'No events yet.');
  return [
    h(
      'ol',
      { class: 'timeline' },
      items.map(({ event, is_archived, stream_id }) =>
        h(
          'li',
          { 'data-event-type': event.type },
          h('time', { datetime: event.at, class: 'when' }, timeText(event.at)),
          h('span', { class: 'event-type' }, event.type),
          is_archived
            ? null
            : h('span', { class: 'badge', title: 'not projected into PostgreSQL yet' }, 'live'),
          h('span', { class: 'event-summary' }, eventSummary(event)),
          h(
            'details',
            { 'data-key': `event:${event.id}` },
            h('summary', {}, h('span', { class: 'visually-hidden' }, `${event.type} `), 'envelope'),
            h('pre', { class: 'json' }, JSON.stringify({ stream_id, ...event }, null, 2)),
          ),
        ),
      ),
    ),
    hasGap
      ? h('p', { class: 'hint' }, 'The persister is far behind: older events not yet archived are not shown.')
      : null,
  ];
}
