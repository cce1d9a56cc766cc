// SPEC §3: a send buffer over 1 MiB closes the connection (1013), and no connection may affect another. Under
// load, a main device stops reading its socket (its TCP socket paused) while its shop's sub sends big notifies:
// its shop's other main keeps receiving every one of them, the other shops' load keeps flowing, the edge closes
// the stuck socket with 1013 instead of growing its memory, and the device gets the whole backlog when it
// comes back. The edge runs as a process of its own so that its memory can be read.
import { describe, expect, it } from 'vitest';
import { loginRaw, readLog, type TestContext, waitFor } from '#test-support';
import { checkNothingLost, clusterUnderTest, Load, runUnderLoad } from '../support/fault';

const world = clusterUnderTest({
  services: ['edge-a', 'persister', 'dispatcher'],
  processes: ['edge-a'],
});

/** Just under the 64 KiB frame limit once wrapped in a message frame. */
const BLOB = 'x'.repeat(50_000);
const MAX_BIG_NOTIFIES = 1_000;

describe('when a main device stops reading its socket under load', () => {
  it('the edge closes it with 1013 without growing, others are not held up, and its backlog waits for it', async () => {
    let slow: Load | undefined;
    const result = await runUnderLoad(world.ctx, world.cluster, { label: 'slow-reader' }, async (load) => {
      slow = await Load.connect(world.ctx, {
        url: world.cluster.wsUrl,
        shopPrefix: 'stuck',
        shops: 1,
        mainsPerShop: 2,
        subsPerShop: 1,
        notifiesPerS: 0,
      });
      const [stuck, fast] = slow.mains;
      const sub = slow.subs[0]!;
      // The stuck main's own client gives way to a bare socket that logs in and then stops reading.
      await slow.disconnect(stuck!);
      const reader = await loginRaw(`ws://127.0.0.1:${world.cluster.ports['edge-a']}/ws`, stuck!.token);
      reader.ws.pause(); // ws stops reading its TCP socket: what a stuck device looks like to the edge
      const connId = String((reader.frames[0]?.data as { conn_id?: unknown } | undefined)?.conn_id);
      const isOpen = async () =>
        (await world.ctx.redis.hexists(
          world.ctx.keys.edgeConnections(world.cluster.edgeId('edge-a')),
          connId,
        )) === 1;
      const rssBeforeKiB = world.cluster.residentKiB('edge-a');
      const othersBefore = load.recording.receivedAt.length;
      const fastReceived = () => slow!.recording.received.get(`${fast!.shop}/${fast!.clientId}`)!.size;

      let big = 0;
      let peakKiB = rssBeforeKiB;
      while ((await isOpen()) && big < MAX_BIG_NOTIFIES) {
        for (let i = 0; i < 10; i++, big++) slow.notifyOverSocket(sub, { blob: BLOB });
        // The shop's other main takes every big message as it comes: the stuck one holds nobody up.
        const sent = big;
        await waitFor(() => fastReceived() >= sent, { timeoutMs: 30_000, what: 'the fast main to keep up' });
        peakKiB = Math.max(peakKiB, world.cluster.residentKiB('edge-a'));
      }
      const closeCode = await closeCodeOf(world.ctx, stuck!.shop, connId);
      const othersDuring = load.recording.receivedAt.length - othersBefore;
      expect(closeCode).toBe(1013);
      // Nothing unbounded: the edge held at most its 1 MiB send buffer, plus what the big messages cost it.
      expect(peakKiB - rssBeforeKiB).toBeLessThan(200 * 1024);
      expect(othersDuring).toBeGreaterThan(0);

      // Back, with a client that reads: the whole backlog arrives and is acked.
      reader.ws.terminate();
      await slow.reconnect(stuck!);
      await slow.stop();
      return (
        `${stuck!.shop}/${stuck!.clientId} stopped reading; ${big} notifies of 50 KB until the edge closed it ` +
        `with ${closeCode}; edge memory ${Math.round(rssBeforeKiB / 1024)} MB → peak ${Math.round(peakKiB / 1024)} MB; ` +
        `the fast main received ${fastReceived()}; other shops received ${othersDuring} messages meanwhile`
      );
    });
    expect(result.violations).toEqual([]);
    const stuckShop = await checkNothingLost(world.ctx, slow!.recording, {
      label: 'slow-reader (stuck shop)',
    });
    await slow!.close();
    expect(stuckShop.violations).toEqual([]);
    expect(stuckShop.counts.acknowledged).toBe(stuckShop.counts.sent);
  });
});

/** The close code the edge recorded for the connection. */
async function closeCodeOf(ctx: TestContext, shop: string, connId: string): Promise<number | undefined> {
  const close = await waitFor(
    async () =>
      (await readLog(ctx, 'ConnectionClosed')).find(
        (e) => e.shop_id === shop && e.type === 'ConnectionClosed' && e.data.conn_id === connId,
      ),
    { what: `ConnectionClosed of ${connId}` },
  );
  return close.type === 'ConnectionClosed' ? close.data.close_code : undefined;
}
