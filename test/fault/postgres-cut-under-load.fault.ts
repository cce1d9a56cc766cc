// SPEC §5.6: PostgreSQL being down delays projections but loses nothing and does not stop live delivery. The
// persister and the api reach PostgreSQL through a proxy that the test cuts for a while under load: messages
// keep reaching the mains and HTTP notifies keep being accepted while it is cut, the persister reports itself
// unready and the edge does not, and once PostgreSQL is back the projections catch up with every message.
import { describe, expect, it } from 'vitest';
import { waitFor } from '#test-support';
import { clusterUnderTest, runUnderLoad } from '../support/fault';

const world = clusterUnderTest({
  cutPostgres: true,
  services: ['edge-a', 'persister', 'dispatcher', 'api'],
  processes: [],
});

async function readyStatus(port: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  await response.body?.cancel();
  return response.status;
}

describe('when PostgreSQL is cut off from the persister and the api under load', () => {
  it('live delivery goes on, projections catch up afterwards, and nothing is lost', async () => {
    const proxy = world.cluster.postgresProxy!;
    let deliveredWhileCut = 0;
    let acceptedWhileCut = 0;
    const result = await runUnderLoad(
      world.ctx,
      world.cluster,
      { label: 'pg-cut', httpNotifiesPerS: 10 },
      async (load) => {
        const ok = () => load.recording.notifies.filter((r) => r.outcome === 'ok');
        const cutAt = Date.now();
        const acceptedBefore = ok().filter((r) => r.via === 'http').length;
        proxy.cut();
        // The persister notices (readiness names PostgreSQL); the edge needs Redis only and stays ready.
        await waitFor(async () => (await readyStatus(world.cluster.ports.persister)) === 503, {
          timeoutMs: 30_000,
          what: 'the persister to report PostgreSQL down',
        });
        expect(await readyStatus(world.cluster.ports['edge-a'])).toBe(200);
        const before = load.recording.receivedAt.length;
        await waitFor(() => load.recording.receivedAt.length >= before + 500, {
          timeoutMs: 60_000,
          what: 'messages delivered while PostgreSQL is cut',
        });
        await waitFor(() => ok().filter((r) => r.via === 'http').length >= acceptedBefore + 20, {
          timeoutMs: 60_000,
          what: 'HTTP notifies accepted while PostgreSQL is cut',
        });
        const resumedAt = Date.now();
        proxy.resume();
        deliveredWhileCut = load.receivedBetween(cutAt, resumedAt);
        acceptedWhileCut = ok().filter((r) => r.via === 'http').length - acceptedBefore;
        await waitFor(async () => (await readyStatus(world.cluster.ports.persister)) === 200, {
          timeoutMs: 30_000,
          what: 'the persister to be ready again',
        });
        return (
          `PostgreSQL cut for ${resumedAt - cutAt} ms (${proxy.refused} connections dropped or refused); ` +
          `${deliveredWhileCut} messages delivered and ${acceptedWhileCut} HTTP notifies accepted meanwhile`
        );
      },
    );
    expect(result.violations).toEqual([]);
    expect(result.counts.acknowledged).toBe(result.counts.sent);
    expect(deliveredWhileCut).toBeGreaterThanOrEqual(500);
    expect(acceptedWhileCut).toBeGreaterThanOrEqual(20);
  });
});
