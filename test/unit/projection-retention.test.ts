import { describe, expect, it } from 'vitest';
import { keepFrom } from '#persister';

const LONG_AGO = 0;
const FAR_FUTURE = 9_000_000_000_000;

describe('when retention decides where a stream may be trimmed', () => {
  it('trims nothing while nothing is archived', () => {
    expect(
      keepFrom({ newestArchived: null, cutoffMs: FAR_FUTURE, oldestUnfinished: [null, null] }),
    ).toBeNull();
  });

  it('keeps the newest archived event when every other bound is past it', () => {
    expect(
      keepFrom({ newestArchived: '500-3', cutoffMs: FAR_FUTURE, oldestUnfinished: [null, '900-0'] }),
    ).toBe('500-3');
  });

  it('keeps every event younger than the retention time', () => {
    expect(keepFrom({ newestArchived: '500-3', cutoffMs: 200, oldestUnfinished: [null, null] })).toBe(
      '200-0',
    );
  });

  it('keeps the oldest event a group has not finished', () => {
    expect(
      keepFrom({ newestArchived: '500-3', cutoffMs: FAR_FUTURE, oldestUnfinished: ['300-1', null] }),
    ).toBe('300-1');
  });

  it('trims nothing when the lowest bound is the start of the stream', () => {
    expect(
      keepFrom({ newestArchived: '500-3', cutoffMs: LONG_AGO, oldestUnfinished: [null, null] }),
    ).toBeNull();
    expect(
      keepFrom({ newestArchived: '500-3', cutoffMs: FAR_FUTURE, oldestUnfinished: ['0-0', null] }),
    ).toBeNull();
  });
});
