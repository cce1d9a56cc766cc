// SPEC §2 and §5.4: kill any edge and its devices reconnect to another; an offline device gets every undelivered
// message, oldest first, right after its next login. A CI-sized storm: 1,000 devices (250 shops × 1 sub + 3
// mains) all on one edge under load; that edge is SIGKILLed, so all of them drop at once and log in to the other
// edge, which must take the whole crowd and deliver the backlog built up meanwhile.
import { describe, expect, it } from 'vitest';
import { readLog } from '#test-support';
import { allBackOnline, clusterUnderTest, runUnderLoad } from '../support/fault';

const world = clusterUnderTest({
  services: ['edge-a', 'edge-b', 'persister', 'dispatcher'],
  processes: ['edge-a', 'edge-b'],
  balanced: ['edge-a'],
});

describe('when the edge holding 1,000 devices is SIGKILLed under load', () => {
  it('they all log in to the other edge and get their backlog, and nothing is lost or doubled', async () => {
    const survivor = world.cluster.edgeId('edge-b');
    let loginsOnSurvivor = 0;
    const result = await runUnderLoad(
      world.ctx,
      world.cluster,
      { label: 'storm', shops: 250, mainsPerShop: 3, subsPerShop: 1, settleMs: 60_000 },
      async (load) => {
        const doomed = world.cluster.edgeId('edge-a');
        const onDoomed = load.devices.filter((d) => d.client.session?.edge_id === doomed).length;
        world.cluster.balanceOver(['edge-b']);
        const killedAt = Date.now();
        await world.cluster.kill('edge-a');
        await allBackOnline(world.ctx, load, doomed, 120_000);
        const tookMs = Date.now() - killedAt;
        loginsOnSurvivor = (await readLog(world.ctx, 'DeviceLoggedIn')).filter(
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
