// The edge's /metrics, read by a real scrape: `broker_edge_connections` counts the sockets open at the moment of
// the scrape (it is set when scraped, not on every open, login and close), by state.
import { describe, expect, it } from 'vitest';
import { openRaw, waitFor } from '#test-support';
import { edgeWorld, loggedIn, registered } from './fixture';

const world = edgeWorld();

async function socketGauge(): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${world.edge.port}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^broker_edge_connections\{state="([a-z_]+)"\} (\d+)$/gm))
    counts[match[1]!] = Number(match[2]);
  return counts;
}

describe('the edge connections gauge', () => {
  it('counts logged-in and anonymous sockets as they are when scraped', async () => {
    expect(await socketGauge()).toEqual({ logged_in: 0, anonymous: 0 });
    const { token } = await registered(world.ctx, 'gauge', 'm1', 'main');
    const device = await loggedIn(world.url, token);
    const stranger = await openRaw(world.url);
    expect(await socketGauge()).toEqual({ logged_in: 1, anonymous: 1 });

    device.ws.close();
    stranger.ws.close();
    await waitFor(
      async () => {
        const counts = await socketGauge();
        return counts.logged_in === 0 && counts.anonymous === 0;
      },
      { what: 'both sockets gone from the gauge' },
    );
  });
});
