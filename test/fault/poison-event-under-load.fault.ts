// SPEC §4: an event that fails validation is parked in a dead-letter stream with the reason, never silently
// dropped, and never blocks the ones behind it. Under load, garbage is written straight into a loaded shop's
// stream (XADD: not JSON, JSON that is no event, no body at all), plus a valid event PostgreSQL cannot store;
// both consumer groups park what they cannot handle and every event behind them is still delivered and stored.
import { describe, expect, it } from 'vitest';
import { listDeadLetters } from '#eventlog';
import { createEvent, encodeEvent } from '#events';
import { waitFor } from '#test-support';
import { clusterUnderTest, runUnderLoad } from '../support/fault';

const world = clusterUnderTest({ services: ['edge-a', 'persister', 'dispatcher'], processes: [] });

/** A shop outside the load whose events share the stream of `shop`, so a poison of its own sits in that stream. */
function neighbourOf(shop: string): string {
  for (let i = 0; ; i++) {
    if (world.ctx.keys.shardOf(`stranger-${i}`) === world.ctx.keys.shardOf(shop)) return `stranger-${i}`;
  }
}

describe('when garbage is written straight into a stream under load', () => {
  it('each consumer group parks it with the reason and the events behind it are delivered and stored', async () => {
    let garbage: string[] = [];
    let unstorable = '';
    const result = await runUnderLoad(world.ctx, world.cluster, { label: 'poison' }, async () => {
      const stream = world.ctx.keys.streamOfShop('poison-0');
      const neighbour = neighbourOf('poison-0');
      // PostgreSQL's jsonb refuses the NUL character that JSON (and so the event schema) allows.
      const cannotStore = createEvent({
        type: 'NotifyRequested',
        shopId: neighbour,
        source: 'edge:poisoner',
        data: {
          req_id: 'poison',
          from_client_id: 'w0',
          from_type: 'sub',
          audience: 'mains',
          recipients: ['m0'],
          table_id: 1,
          type: 'add_dish',
          status: 0,
          data: { note: 'no\u0000te' },
          user_info: {},
        },
      });
      garbage = [
        String(await world.ctx.redis.xadd(stream, '*', 't', 'NotifyRequested', 'e', '{"id": "not json')),
        String(
          await world.ctx.redis.xadd(
            stream,
            '*',
            't',
            'NotifyRequested',
            'e',
            '{"id":"x","type":"NotifyRequested"}',
          ),
        ),
        String(await world.ctx.redis.xadd(stream, '*', 'garbage', '1')),
      ];
      unstorable = String(await world.ctx.redis.xadd(stream, '*', ...encodeEvent(cannotStore)));
      await waitFor(
        async () => {
          const parked = await listDeadLetters(world.ctx.redis, world.ctx.keys, 1000);
          const has = (group: string, id: string) =>
            parked.some((d) => d.group === group && d.stream_id === id);
          return (
            garbage.every((id) => has('persister', id) && has('dispatcher', id)) &&
            has('persister', unstorable)
          );
        },
        { timeoutMs: 60_000, what: 'the garbage to be dead-lettered by both groups' },
      );
      return `XADD of 3 garbage entries and 1 unstorable event into ${stream} (shop poison-0's stream)`;
    });
    expect(result.violations).toEqual([]);
    expect(result.counts.acknowledged).toBe(result.counts.sent);

    const parked = await listDeadLetters(world.ctx.redis, world.ctx.keys, 1000);
    const reasons = parked
      .filter((d) => [...garbage, unstorable].includes(d.stream_id))
      .map((d) => `${d.group}: ${d.reason}`);
    console.log(`[fault] poison: dead letters ${reasons.join(' | ')}`);
    expect(parked.filter((d) => d.stream_id === unstorable && d.group === 'persister')[0]?.reason).toMatch(
      /^handler failed/,
    );
    expect(reasons.length).toBeGreaterThanOrEqual(7);
  });
});
