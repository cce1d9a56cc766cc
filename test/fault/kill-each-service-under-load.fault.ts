// SPEC §5.1: an acknowledged event is never lost whatever process is killed at any moment. Under a steady load
// (20 shops × 1 sub + 2 mains, 100 notifies/s over sockets, 10/s over HTTP with an Idempotency-Key), each
// service in turn is SIGKILLed and started again, then all of them at once; after each, the checker proves
// nothing was lost or doubled. The cases share one broker; each has its own shops.
import { describe, expect, it } from 'vitest';
import { waitFor } from '#test-support';
import { allBackOnline, clusterUnderTest, type Load, runUnderLoad } from '../support/fault';

const world = clusterUnderTest();

const received = (load: Load) => load.recording.receivedAt.length;
const accepted = (load: Load) => load.recording.notifies.filter((r) => r.outcome === 'ok').length;
/** HTTP attempts that got no answer at all (status 0: connection refused or cut). */
const unanswered = (load: Load) =>
  load.recording.notifies
    .filter((r) => r.via === 'http')
    .reduce((sum, r) => sum + r.replies.filter((x) => x.code === 0).length, 0);

describe('when an edge is SIGKILLed under load', () => {
  it('its devices reconnect to the other edge and nothing acknowledged is lost or doubled', async () => {
    const doomed = world.cluster.edgeId('edge-a');
    const result = await runUnderLoad(
      world.ctx,
      world.cluster,
      { label: 'kill-edge', httpNotifiesPerS: 10 },
      async (load) => {
        const onIt = load.devices.filter((d) => d.client.session?.edge_id === doomed).length;
        const startedAt = Date.now();
        await world.cluster.kill('edge-a');
        await allBackOnline(world.ctx, load, doomed);
        const tookMs = Date.now() - startedAt;
        await world.cluster.start('edge-a');
        return `SIGKILL edge-a holding ${onIt} of ${load.devices.length} devices; all back on edge-b in ${tookMs} ms; edge-a restarted`;
      },
    );
    expect(result.violations).toEqual([]);
    expect(result.counts.acknowledged).toBe(result.counts.sent);
  });
});

describe('when the persister is SIGKILLed under load', () => {
  it('live delivery goes on, the restarted persister catches up, and nothing is lost or doubled', async () => {
    const result = await runUnderLoad(
      world.ctx,
      world.cluster,
      { label: 'kill-persister', httpNotifiesPerS: 10 },
      async (load) => {
        await world.cluster.kill('persister');
        const before = received(load);
        // SPEC §5.6: projections wait, live delivery does not.
        await waitFor(() => received(load) >= before + 200, {
          timeoutMs: 60_000,
          what: 'deliveries while the persister is down',
        });
        const during = received(load) - before;
        await world.cluster.start('persister');
        return `SIGKILL persister; ${during} messages delivered while it was down; restarted`;
      },
    );
    expect(result.violations).toEqual([]);
    expect(result.counts.acknowledged).toBe(result.counts.sent);
  });
});

describe('when the dispatcher is SIGKILLed under load', () => {
  it('notifies are still accepted and the restarted dispatcher delivers everything once', async () => {
    const result = await runUnderLoad(
      world.ctx,
      world.cluster,
      { label: 'kill-dispatcher', httpNotifiesPerS: 10 },
      async (load) => {
        const before = accepted(load);
        await world.cluster.kill('dispatcher');
        await waitFor(() => accepted(load) >= before + 200, {
          timeoutMs: 60_000,
          what: 'notifies accepted while the dispatcher is down',
        });
        const during = accepted(load) - before;
        await world.cluster.start('dispatcher');
        return `SIGKILL dispatcher; ${during} notifies accepted while it was down; restarted`;
      },
    );
    expect(result.violations).toEqual([]);
    expect(result.counts.acknowledged).toBe(result.counts.sent);
  });
});

describe('when the api is SIGKILLed while notifies come over HTTP', () => {
  it('the back office retries with the same Idempotency-Key and each notify is recorded once', async () => {
    const result = await runUnderLoad(
      world.ctx,
      world.cluster,
      { label: 'kill-api', httpNotifiesPerS: 20 },
      async (load) => {
        const before = unanswered(load);
        await world.cluster.kill('api');
        await waitFor(() => unanswered(load) >= before + 10, {
          timeoutMs: 60_000,
          what: 'HTTP notifies failing while the api is down',
        });
        await world.cluster.start('api');
        return `SIGKILL api; ${unanswered(load) - before} HTTP attempts unanswered meanwhile; restarted`;
      },
    );
    expect(result.violations).toEqual([]);
    expect(result.counts.acknowledged).toBe(result.counts.sent);
    const retried = result.load.recording.notifies.filter((r) => r.via === 'http' && r.replies.length > 1);
    expect(retried.length).toBeGreaterThan(0);
  });
});

describe('when every service is SIGKILLed at once under load', () => {
  it('after they restart, devices log in again and nothing acknowledged is lost or doubled', async () => {
    const result = await runUnderLoad(
      world.ctx,
      world.cluster,
      { label: 'kill-all', httpNotifiesPerS: 10, settleMs: 90_000 },
      async (load) => {
        await world.cluster.killAll();
        await world.cluster.startAll();
        await allBackOnline(world.ctx, load);
        return 'SIGKILL edge-a, edge-b, persister, dispatcher and api together; all restarted';
      },
    );
    expect(result.violations).toEqual([]);
    expect(result.counts.acknowledged).toBe(result.counts.sent);
  });
});
