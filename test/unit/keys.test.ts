// Keys: a shop's shard never moves, shards share the load, and every key of one shop lands in one Redis Cluster
// slot (so one Lua script may touch them all). The slot is computed here as Redis does, independently of keys.ts.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareStreamIds, Keys, paddedStreamId, reqRecordOf } from '#events';

/** CRC16-CCITT (XMODEM), the checksum of Redis Cluster's key slots (cluster spec, "Keys distribution model"). */
function crc16(text: string): number {
  let crc = 0;
  for (const byte of Buffer.from(text, 'utf8')) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** HASH_SLOT: only the part between the first `{` and the next `}` counts, when it is not empty. */
function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16384;
  }
  return crc16(key) % 16384;
}

const prefix = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
const shopId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
const shardCount = fc.integer({ min: 1, max: 1024 });

describe('the slot function used by these tests', () => {
  it('matches the examples of the Redis Cluster specification', () => {
    expect(crc16('123456789')).toBe(0x31c3);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    expect(slotOf('foo{}{bar}')).toBe(crc16('foo{}{bar}') % 16384);
    expect(slotOf('foo{{bar}}zap')).toBe(crc16('{bar') % 16384);
  });
});

describe('when a shop is mapped to a shard', () => {
  it('maps the same shop to the same shard every time, with any Keys instance', () => {
    fc.assert(
      fc.property(prefix, prefix, shardCount, shopId, (p1, p2, shards, shop) => {
        const shard = new Keys(p1, shards).shardOf(shop);
        expect(new Keys(p2, shards).shardOf(shop)).toBe(shard);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(shards);
        expect(Number.isInteger(shard)).toBe(true);
      }),
    );
  });

  it('pins known shops to known shards (a change would strand every live stream)', () => {
    const keys = new Keys('broker', 16);
    expect(['shop-1', 'shop-2', 'a', '店'].map((shop) => keys.shardOf(shop))).toEqual([15, 2, 3, 8]);
  });

  it('lists every shard once', () => {
    expect(new Keys('b', 5).allShards()).toEqual([0, 1, 2, 3, 4]);
  });

  // Chi-square with shards-1 = 15 degrees of freedom: 37.7 is the 99.9th percentile, so a fair spread fails
  // this about once in a thousand seeds — and the seeds are fixed.
  const CHI_SQUARE_15_DF_P999 = 37.7;
  const chiSquare = (shops: string[], keys: Keys) => {
    const counts = new Array<number>(keys.shardCount).fill(0);
    for (const shop of shops) counts[keys.shardOf(shop)]!++;
    const expected = shops.length / keys.shardCount;
    return counts.reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
  };

  it('spreads 10k random shop ids evenly over the shards', () => {
    // Distinct ids: fast-check favours short strings, and a repeated id is one shop, not load.
    const [shops] = fc.sample(fc.uniqueArray(shopId, { minLength: 10_000, maxLength: 10_000 }), {
      numRuns: 1,
      seed: 20250101,
    });
    expect(chiSquare(shops!, new Keys('broker', 16))).toBeLessThan(CHI_SQUARE_15_DF_P999);
  });

  it('spreads 10k sequential shop ids evenly over the shards', () => {
    const shops = Array.from({ length: 10_000 }, (_, i) => `shop-${i + 1}`);
    expect(chiSquare(shops, new Keys('broker', 16))).toBeLessThan(CHI_SQUARE_15_DF_P999);
  });

  it("spreads the shards' hash tags over the cluster's slots", () => {
    const keys = new Keys('broker', 16);
    const slots = keys.allShards().map((shard) => slotOf(keys.stream(shard)));
    expect(new Set(slots).size).toBe(16);
  });
});

describe("when a shop's keys are built", () => {
  it("puts every key of one shop in its shard's slot", () => {
    fc.assert(
      fc.property(
        prefix,
        shardCount,
        shopId,
        fc.string(),
        fc.string(),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        (p, shards, shop, sender, reqId, group, edge) => {
          const keys = new Keys(p, shards);
          const shard = keys.shardOf(shop);
          const shopKeys = [
            keys.stream(shard),
            keys.streamOfShop(shop),
            keys.devices(shop),
            keys.inbox(shop),
            keys.inboxOrder(shop),
            keys.attempts(shop),
            keys.presence(shop),
            keys.dedup(shop, sender, reqId),
            keys.requests(shop),
            keys.handling(shop),
            keys.handlingOrder(shop),
            keys.closedConnections(shop),
            keys.lease(group, shard),
            keys.deadLetter(shard),
            // A channel, not a key, but SPUBLISH from a script of the shard must name one of its slot.
            keys.edgeChannelOfShop(shop, edge),
            keys.edgeChannels(edge)[shard]!,
          ];
          for (const key of shopKeys) expect(key).toContain(`{s${shard}}`);
          const slot = slotOf(keys.stream(shard));
          expect(shopKeys.map(slotOf)).toEqual(shopKeys.map(() => slot));
        },
      ),
    );
  });

  it('keeps the shop id and the req_id from changing the hash tag', () => {
    // A req_id is client input: braces in it must not open a tag of their own, so it is hashed.
    const keys = new Keys('broker', 16);
    const key = keys.dedup('shop-1', 'waiter', '{evil}');
    expect(key).not.toContain('evil');
    expect(slotOf(key)).toBe(slotOf(keys.streamOfShop('shop-1')));
  });

  it('gives two shops on one shard different registries, and one shard one stream', () => {
    const keys = new Keys('broker', 1);
    expect(keys.devices('a')).not.toBe(keys.devices('b'));
    expect(keys.streamOfShop('a')).toBe(keys.streamOfShop('b'));
  });

  it('digests a (sender, req_id) as the records in Redis were written: SHA-1 of sender, newline, req_id', () => {
    // Records, filters and the earlier per-req_id keys of a running broker hold these bytes: they must not move.
    fc.assert(
      fc.property(fc.string(), fc.string({ unit: 'grapheme' }), (sender, reqId) => {
        const streamed = createHash('sha1').update(sender).update('\n').update(reqId).digest();
        const record = reqRecordOf(sender, reqId);
        expect(record.digest.equals(streamed)).toBe(true);
        expect(record.tag.equals(streamed.subarray(2, 10))).toBe(true);
        const keys = new Keys('broker', 16);
        expect(keys.dedupOf('s', record.digest)).toBe(keys.dedup('s', sender, reqId));
      }),
    );
  });

  it('gives two senders with the same req_id different records', () => {
    const keys = new Keys('broker', 16);
    expect(keys.dedup('s', 'waiter-1', 'r1')).not.toBe(keys.dedup('s', 'waiter-2', 'r1'));
    // Sender ids are identifiers (no newline), so the separator cannot be forged from the req_id side.
    expect(keys.dedup('s', 'ab', 'c')).not.toBe(keys.dedup('s', 'a', 'bc'));
  });

  it("keeps an edge's keys in one slot", () => {
    const keys = new Keys('broker', 16);
    expect(slotOf(keys.edgeConnections('edge-1'))).toBe(slotOf(keys.edgeSweepLock('edge-1')));
  });

  it('keeps every key under the prefix', () => {
    const keys = new Keys('tenant-a', 4);
    for (const key of [
      keys.stream(0),
      keys.devices('s'),
      keys.shops(),
      keys.edges(),
      keys.edgeChannel(0, 'e1'),
      keys.members('persister'),
      keys.bullPrefix(),
    ]) {
      expect(key.startsWith('tenant-a:')).toBe(true);
    }
  });
});

describe('when a stream id is padded', () => {
  const streamId = fc
    .tuple(fc.integer({ min: 0, max: 9_999_999_999_999 }), fc.integer({ min: 0, max: 9_999_999_999 }))
    .map(([ms, seq]) => `${ms}-${seq}`);

  // The inbox order is ranged with ZRANGEBYLEX, which compares bytes: plain string order is the model.
  it('sorts padded ids in log order', () => {
    fc.assert(
      fc.property(streamId, streamId, (a, b) => {
        const [pa, pb] = [paddedStreamId(a), paddedStreamId(b)];
        const lexical = pa < pb ? -1 : pa > pb ? 1 : 0;
        expect(lexical).toBe(Math.sign(compareStreamIds(a, b)));
      }),
    );
  });

  it('sorts a log of ids the way Redis appended them', () => {
    const log = ['9-0', '9-1', '9-10', '10-0', '10-2', '100-0', '1735689600000-0', '1735689600000-11'];
    const shuffled = [...log].reverse().map(paddedStreamId).sort();
    expect(shuffled).toEqual(log.map(paddedStreamId));
  });

  it('has a fixed width of 24 characters', () => {
    fc.assert(
      fc.property(streamId, (id) => {
        expect(paddedStreamId(id)).toHaveLength(24);
      }),
    );
    expect(paddedStreamId('1735689600000-0')).toBe('1735689600000-0000000000');
    expect(paddedStreamId('5-12')).toBe('0000000000005-0000000012');
  });
});
