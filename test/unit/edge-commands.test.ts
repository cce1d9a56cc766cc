import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEdgeCommand, type EdgeCommand, encodeEdgeCommand } from '#events';

describe('edge commands', () => {
  it('sends a delivery of JSON frames as lines, without escaping the frames again', () => {
    const frame = JSON.stringify({ op: 'message', data: { title: 'Table "7"\nadd', note: '加菜' } });
    const text = encodeEdgeCommand({ kind: 'deliver', conn_id: 'c_01J', frames: [frame, frame] });
    expect(text).toBe(`deliver c_01J\n${frame}\n${frame}`);
    expect(decodeEdgeCommand(text)).toEqual({ kind: 'deliver', conn_id: 'c_01J', frames: [frame, frame] });
  });

  it('round-trips any delivery and any close exactly', () => {
    const command = fc.oneof(
      fc.record({
        kind: fc.constant('deliver' as const),
        conn_id: fc.string(),
        frames: fc.array(fc.oneof(fc.string(), fc.json())),
      }),
      fc.record({
        kind: fc.constant('close' as const),
        conn_id: fc.string(),
        code: fc.integer(),
        reason: fc.string(),
      }),
    );
    fc.assert(
      fc.property(command, (sent: EdgeCommand) => {
        expect(decodeEdgeCommand(encodeEdgeCommand(sent))).toEqual(sent);
      }),
    );
  });

  it('answers null for text that is no command, without throwing', () => {
    for (const text of [
      '',
      'deliver ',
      'deliver c_1',
      '{',
      '[]',
      'null',
      '{"kind":"deliver"}',
      '{"kind":"close"}',
    ])
      expect(decodeEdgeCommand(text)).toBeNull();
  });
});
