// The edge's timers: the heartbeat that keeps its devices online (and settles writes owed while Redis was away),
// and the pings that find dead peers. One timer each for all sockets (ws README, "How to detect and close
// broken connections"), never one per socket.
import { EDGE_HEARTBEAT_MS, type PresenceBook } from '#eventlog';
import type { Logger } from '#runtime';
import type { ConnectionTable } from './connections';

export interface UpkeepDeps {
  presence: PresenceBook;
  table: ConnectionTable;
  edgeId: string;
  pingIntervalMs: number;
  /** SPEC §3: a connection that leaves a message unacked this long is closed (4408). */
  ackTimeoutMs: number;
  now(): number;
  log: Logger;
}

export interface Upkeep {
  /** One heartbeat now; rejects when Redis is away. */
  beat(): Promise<void>;
  stop(): void;
}

export function startUpkeep(deps: UpkeepDeps): Upkeep {
  const { presence, table, edgeId } = deps;
  let isAway = false;

  async function beat(): Promise<void> {
    const wasUnlisted = await presence.beat(edgeId, deps.now());
    await table.settleOwed();
    // Not listed although running: a dispatcher swept this edge as dead while Redis was away. After a failed
    // heartbeat the check runs anyway: the beat that re-listed us may be one we gave up on (Redis hung, then
    // ran it), so "newly listed" never reached us. closeSwept closes only connections missing from our listing.
    if (wasUnlisted || isAway) await table.closeSwept();
  }

  const heartbeat = setInterval(() => {
    beat().then(
      () => {
        if (isAway) deps.log.info('heartbeat back');
        isAway = false;
      },
      (err: Error) => {
        // The redis client logs the outage once; the edge keeps its sockets and keeps beating.
        if (!isAway) deps.log.warn({ reason: err.message }, 'heartbeat failed; devices stay connected');
        isAway = true;
      },
    );
  }, EDGE_HEARTBEAT_MS);

  // SPEC §3: dead after two missed pongs. Any frame from the peer also counts as a sign of life.
  const pinger = setInterval(() => {
    for (const session of table.all()) {
      if (session.missedPongs >= 2) {
        session.terminate('dead_peer');
        continue;
      }
      session.missedPongs += 1;
      session.socket.ping();
    }
  }, deps.pingIntervalMs);

  // Each session keeps its unacked messages in write order: the check is one look per logged-in session.
  const ackChecker = setInterval(
    () => {
      const nowMs = deps.now();
      for (const session of table.loggedIn()) session.closeIfAckOverdue(nowMs);
    },
    Math.min(1000, Math.max(10, deps.ackTimeoutMs / 4)),
  );

  return {
    beat,
    stop() {
      clearInterval(heartbeat);
      clearInterval(pinger);
      clearInterval(ackChecker);
    },
  };
}
