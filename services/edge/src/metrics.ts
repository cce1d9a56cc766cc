// The edge's Prometheus metrics.
import { counter, gauge, histogram } from '#runtime';

/** The open sockets of one edge, logged in or not yet. */
export interface SocketCounts {
  loggedIn: number;
  anonymous: number;
}

/** The edges of this process (one, but for tests and `start all`), counted when /metrics is scraped. */
const counted = new Set<() => SocketCounts>();

/** Counts an edge's sockets in `broker_edge_connections` until the returned function is called. */
export function countSockets(count: () => SocketCounts): () => void {
  counted.add(count);
  return () => counted.delete(count);
}

export function edgeMetrics() {
  return {
    connections: gauge('broker_edge_connections', 'Open sockets on this edge', ['state'], (metric) => {
      let loggedIn = 0;
      let anonymous = 0;
      for (const count of counted) {
        const counts = count();
        loggedIn += counts.loggedIn;
        anonymous += counts.anonymous;
      }
      metric.set({ state: 'logged_in' }, loggedIn);
      metric.set({ state: 'anonymous' }, anonymous);
    }),
    frames: counter('broker_edge_frames_total', 'Frames accepted, by op', ['op']),
    refused: counter('broker_edge_refused_total', 'Frames refused, by error code', ['code']),
    delivered: counter('broker_edge_pushed_frames_total', 'Frames pushed to devices'),
    backlog: counter('broker_edge_backlog_frames_total', 'Messages pushed with a login backlog'),
    repeats: counter(
      'broker_edge_repeats_skipped_total',
      'Pushes not written because the connection already carries the message (SPEC §3)',
    ),
    bounced: counter(
      'broker_edge_bounced_total',
      'Pushes for connections this edge no longer holds, handed back for a retry',
    ),
    notifyMs: histogram(
      'broker_edge_notify_append_ms',
      'Notify append latency (ms)',
      [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000],
    ),
  };
}

export type EdgeMetrics = ReturnType<typeof edgeMetrics>;
