// @ts-check
// How times, ages and event data read on the page. Pure: no DOM.

/**
 * "0.4 s", "12 s", "3 min", "2 h 5 min", "4 d".
 * @param {number} ms
 */
export function ageText(ms) {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 60_000) return `${Math.floor(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min`;
  if (ms < 86_400_000) {
    const minutes = Math.floor((ms % 3_600_000) / 60_000);
    return `${Math.floor(ms / 3_600_000)} h${minutes > 0 ? ` ${minutes} min` : ''}`;
  }
  return `${Math.floor(ms / 86_400_000)} d`;
}

/**
 * A time of day with milliseconds in the reader's zone; the date too when it is not today.
 * @param {string} iso
 * @param {Date} [now]
 */
export function timeText(iso, now = new Date()) {
  const at = new Date(iso);
  const time = at.toLocaleTimeString(undefined, { hour12: false });
  const ms = String(at.getMilliseconds()).padStart(3, '0');
  const isToday = at.toDateString() === now.toDateString();
  return isToday ? `${time}.${ms}` : `${at.toLocaleDateString()} ${time}`;
}

/**
 * One line saying what an event did, from its data (the catalogue in libs/events/src/catalogue.ts).
 * @param {{ type: string, data: Record<string, any> }} event
 */
export function eventSummary(event) {
  const d = event.data;
  switch (event.type) {
    case 'DeviceRegistered':
      return `${d.client_id} registered as ${d.type}${d.legacy ? ', legacy (original protocol)' : ''}`;
    case 'DeviceRevoked':
      return `${d.client_id} revoked`;
    case 'DeviceTokenRotated':
      return `${d.client_id} got a new token; the old one is refused from now on`;
    case 'DeviceLoggedIn':
      return `${d.client_id} logged in on ${d.edge_id} (${d.conn_id})${d.legacy ? ' over the original protocol' : ''}`;
    case 'ConnectionClosed':
      return `${d.client_id} disconnected: ${d.reason}${d.close_code ? ` (${d.close_code})` : ''}`;
    case 'NotifyRequested': {
      const from = d.from_client_id ?? 'back office';
      const to = d.audience === 'mains' ? `mains ${d.recipients.join(', ') || '(none)'}` : 'online subs';
      const table = d.table_id === null ? '' : `, table ${d.table_id}`;
      return `${d.type}${table} from ${from} to ${to}`;
    }
    case 'MessageDelivered': {
      // SPEC §9.1: a legacy device cannot ack; the edge records the write to its socket instead.
      const what = d.ids.length === 1 ? d.ids[0] : `${d.ids.length} messages`;
      return d.via === 'socket-write'
        ? `${what} written to ${d.client_id}'s socket (legacy device, no ack)`
        : `${d.client_id} acked ${what}`;
    }
    case 'DeliveryFailed':
      return `${d.id} to ${d.client_id} gave up after ${d.attempts} attempts`;
    case 'MessageHandled': {
      // SPEC §10: one handle stands for every copy of the request; older events name one copy, from the back office.
      const by = d.by?.kind === 'device' ? `cashier ${d.by.client_id}` : 'the back office';
      const others = d.notices ? `, ${d.notices.length + (d.dropped?.length ?? 0)} other copies with it` : '';
      return `${d.id} handled by ${by} with status ${d.status}${others}`;
    }
    default:
      return '';
  }
}
