// SPEC §2 and §5.4: kill any edge and its devices reconnect to another; an offline device gets every undelivered
// message, oldest first, right after its next login. A CI-sized storm: 1,000 devices (250 shops × 1 sub + 3
// mains) all on one edge under load; that edge is SIGKILLed, so all of them drop at once and log in to the other
// edge, which must take the whole crowd and deliver the backlog built up meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, readLog, type TestContext } from '#test-support';
import { allBackOnline, FaultCluster, runUnderLoad } from '../support/fault';

let ctx: TestContext;
let cluster: FaultCluster;

beforeAll(async () => {
  ctx = await createTestContext();
  cluster = await FaultCluster.start(ctx, {
    services: ['edge-a', 'edge-b', 'persister', 'dispatcher'],
    processes: ['edge-a', 'edge-b'],
    balanced: ['edge-a'],
  });
});
afterAll(async () => {
  await cluster?.stop();
  await ctx?.cleanup();
});

describe('when the edge holding 1,000 devices is SIGKILLed under load', () => {
  it('they all log in to the other edge and get their backlog, and nothing is lost or doubled', async () => {
    const survivor = cluster.edgeId('edge-b');
    let loginsOnSurvivor = 0;
    const result = await runUnderLoad(
      ctx,
      cluster,
      { label: 'storm', shops: 250, mainsPerShop: 3, subsPerShop: 1, settleMs: 60_000 },
      async (load) => {
        const doomed = cluster.edgeId('edge-a');
        const onDoomed = load.devices.filter((d) => d.client.session?.edge_id === doomed).length;
        cluster.balanceOver(['edge-b']);
        const killedAt = Date.now();
        await cluster.kill('edge-a');
        await allBackOnline(ctx, load, doomed, 120_000);
        const tookMs = Date.now() - killedAt;
        loginsOnSurvivor = (await readLog(ctx, 'DeviceLoggedIn')).filter(
          (e) => e.type === 'DeviceLoggedIn' && e.data.edge_id === survivor,
        ).length;
        return (
          `SIGKILL edge-a holding ${onDoomed} of ${load.devices.length} devices; all logged in to edge-b ` +
          `${tookMs} ms later (${loginsOnSurvivor} logins recorded there)`
        );
      },
    );
    expect(result.violations).toEqual([]);
    expect(result.counts.acknowledged).toBe(result.counts.sent);
    expect(loginsOnSurvivor).toBeGreaterThanOrEqual(1000);
  });
});
