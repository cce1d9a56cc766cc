// ◇ Reading an export of the original's ws_devices table: with or without a header, quoted or not, CRLF or LF;
// each bad row named by its line.
import { describe, expect, it } from 'vitest';
import { csvRecords, readWsDevices } from '../../cli/src/commands/ws-devices-csv';

describe('when the export is well formed', () => {
  it('reads rows without a header as shop_id, client_id, type, the types in either spelling', () => {
    expect(readWsDevices('1001,pos-1,主\n1001,pad-1,副\n1002,pos-1,main\n')).toEqual({
      devices: [
        { shop_id: '1001', client_id: 'pos-1', type: 'main' },
        { shop_id: '1001', client_id: 'pad-1', type: 'sub' },
        { shop_id: '1002', client_id: 'pos-1', type: 'main' },
      ],
      repeated: 0,
      problems: [],
    });
  });

  it('reads the three columns a header names, in any order, among others', () => {
    const file = readWsDevices('\uFEFFType,Client_ID,id,SHOP_ID\r\n副,pad-1,7,s1\r\n\r\n');
    expect(file.devices).toEqual([{ shop_id: 's1', client_id: 'pad-1', type: 'sub' }]);
    expect(file.problems).toEqual([]);
  });

  it('counts a device named twice with the same type once', () => {
    const file = readWsDevices('s1,pad-1,副\ns1,pad-1,sub\n');
    expect(file.devices).toHaveLength(1);
    expect(file.repeated).toBe(1);
  });
});

describe('when rows are bad', () => {
  it('names each by its line', () => {
    expect(
      readWsDevices('shop_id,client_id,type\ns1,pos 1,主\n"s 2",p,主\ns1,p,boss\ns1,q,主\ns1,q,副\n')
        .problems,
    ).toEqual([
      'line 2: client_id "pos 1" is not 1-64 of A-Z a-z 0-9 _ . : -',
      'line 3: shop_id "s 2" is not 1-64 of A-Z a-z 0-9 _ . : -',
      'line 4: type "boss" is not 主, 副, main or sub',
      'line 6: q of shop s1 is named again with another type',
    ]);
  });

  it('refuses a file without rows', () => {
    expect(readWsDevices('\n\n').problems).toEqual(['the file holds no rows']);
  });
});

describe('the CSV records', () => {
  it('keep quoted commas, quotes and newlines, and the line each record starts on', () => {
    expect(csvRecords('a,"b,c","say ""hi"""\n"multi\nline",x\nlast')).toEqual([
      { line: 1, fields: ['a', 'b,c', 'say "hi"'] },
      { line: 2, fields: ['multi\nline', 'x'] },
      { line: 4, fields: ['last'] },
    ]);
  });
});
