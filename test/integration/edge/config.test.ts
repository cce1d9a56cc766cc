// What the edge refuses to start with, before it connects to anything.
import { describe, expect, it } from 'vitest';
import { startEdgeWorld } from './fixture';

describe('when the edge is configured', () => {
  it('refuses an EDGE_ID its events could not carry', async () => {
    await expect(startEdgeWorld({ EDGE_ID: 'e'.repeat(129) })).rejects.toThrow(/EDGE_ID: expected 1 to 128/);
  });
});
