// SPEC §10, property: however handles of one request from several cashiers and the back office interleave, exactly
// one MessageHandled is recorded, every other handle is told who was first (a repeat of the winner's own handle
// answers as a repeat), and every copy ends with the winner's status, time and handler once projected. Real Redis,
// real PostgreSQL, the real persister; the handles race for real (all sent at once).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HandleOutcome, handleRequest } from '#eventlog';
import { createEvent, decodeEntry, type HandledBy } from '#events';
import { handlingWorld } from './handling-fixture';

const MAINS = ['m0', 'm1', 'm2'] as const;

describe('when handles of one request race', () => {
  const world = handlingWorld();
  let run = 0;

  async function openShop(shopId: string): Promise<string> {
    for (const client_id of [...MAINS, 'w'] as const) {
      await world.log.register(
        createEvent({
          type: 'DeviceRegistered',
          shopId,
          source: 'api',
          data: { client_id, type: client_id === 'w' ? 'sub' : 'main', token_id: `${client_id}-t` },
        }),
      );
    }
    const notify = createEvent({
      type: 'NotifyRequested',
      shopId,
      source: 'edge:e1',
      data: {
        req_id: 'r',
        from_client_id: 'w',
        from_type: 'sub',
        audience: 'mains',
        recipients: [],
        table_id: 5,
        type: 'return_dish',
        status: 0,
        data: {},
        user_info: {},
      },
    });
    const { eventId } = await world.log.appendNotify(notify, { tokenId: 'w-t', type: 'sub' });
    return eventId;
  }

  const handler = fc.constantFrom<HandledBy>(
    { kind: 'api' },
    ...MAINS.map((client_id) => ({ kind: 'device' as const, client_id })),
  );

  it('records one handle, tells every other who was first, and leaves every copy with its data', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ by: handler, status: fc.integer({ min: 0, max: 2 }) }), {
          minLength: 2,
          maxLength: 6,
        }),
        async (handles) => {
          const shopId = `race-${++run}`;
          const requestId = await openShop(shopId);
          const outcomes: HandleOutcome[] = await Promise.all(
            handles.map(({ by, status }) =>
              handleRequest(world.deps, {
                shopId,
                messageId: `${requestId}.${by.kind === 'device' ? by.client_id : 'm0'}`,
                status,
                by,
                source: by.kind === 'device' ? 'edge:e1' : 'api',
                nowMs: Date.now(),
              }),
            ),
          );
          const winners = outcomes.flatMap((o, i) => (o.kind === 'handled' ? [i] : []));
          expect(winners).toHaveLength(1);
          const winner = handles[winners[0]!]!;
          for (const [i, outcome] of outcomes.entries()) {
            if (outcome.kind === 'handled') continue;
            const mine = handles[i]!;
            expect(outcome.first).toMatchObject({ by: winner.by, status: winner.status });
            const isRepeat =
              JSON.stringify(mine.by) === JSON.stringify(winner.by) && mine.status === winner.status;
            expect(outcome.kind).toBe(isRepeat ? 'repeat' : 'conflict');
          }

          const entries = await world.ctx.redis.xrange(world.ctx.keys.streamOfShop(shopId), '-', '+');
          const handled = entries
            .map(([, fields]) => decodeEntry(fields))
            .filter((d) => d.ok && d.event.type === 'MessageHandled' && d.event.shop_id === shopId);
          expect(handled).toHaveLength(1);

          await world.persister.whenCaughtUp();
          const { rows } = await world.pool.query(
            'SELECT id, state, status, handled_at, handled_by FROM messages WHERE event_id = $1',
            [requestId],
          );
          expect(rows).toHaveLength(MAINS.length);
          const at = (outcomes[winners[0]!] as Extract<HandleOutcome, { kind: 'handled' }>).at;
          for (const row of rows) {
            expect(row).toMatchObject({ state: 'handled', status: winner.status, handled_by: winner.by });
            expect((row.handled_at as Date).toISOString()).toBe(at);
          }
        },
      ),
      { numRuns: 15 },
    );
  }, 120_000);
});
