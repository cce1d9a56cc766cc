// ◇ A CSV export of the original system's ws_devices table (SPEC §9): `shop_id, client_id, type` per row, with or
// without a header (a header may name more columns, in any order: those three are read), RFC 4180 quoting, CRLF or
// LF, a UTF-8 byte-order mark. Pure: text in, devices and problems out.
import { compile, type DeviceType, DeviceTypeInput, Identifier, normaliseDeviceType } from '#events';

export interface WsDevice {
  shop_id: string;
  client_id: string;
  type: DeviceType;
}

export interface WsDevicesFile {
  /** Each device once, in file order. */
  devices: WsDevice[];
  /** Rows naming a device an earlier row named with the same type. */
  repeated: number;
  /** What is wrong, one line per bad row (`line 7: …`); the file is unusable while there is any. */
  problems: string[];
}

interface CsvRecord {
  line: number;
  fields: string[];
}

const COLUMNS = ['shop_id', 'client_id', 'type'] as const;
const isIdentifier = compile(Identifier).is;
const isType = compile(DeviceTypeInput).is;

export function readWsDevices(text: string): WsDevicesFile {
  const records = csvRecords(text).filter((r) => r.fields.some((f) => f.trim() !== ''));
  const header = records[0]?.fields.map((f) => f.trim().toLowerCase()) ?? [];
  const hasHeader = COLUMNS.every((column) => header.includes(column));
  const at = hasHeader ? COLUMNS.map((column) => header.indexOf(column)) : [0, 1, 2];
  const file: WsDevicesFile = { devices: [], repeated: 0, problems: [] };
  const seen = new Map<string, WsDevice>();
  for (const record of hasHeader ? records.slice(1) : records) {
    const [shop, client, type] = at.map((i) => (record.fields[i] ?? '').trim()) as [string, string, string];
    const problem = problemOf(shop, client, type);
    if (problem !== null || !isType(type)) {
      file.problems.push(`line ${record.line}: ${problem}`);
      continue;
    }
    const device: WsDevice = { shop_id: shop, client_id: client, type: normaliseDeviceType(type) };
    const key = `${shop}/${client}`;
    const earlier = seen.get(key);
    if (earlier === undefined) {
      seen.set(key, device);
      file.devices.push(device);
    } else if (earlier.type === device.type) {
      file.repeated += 1;
    } else {
      file.problems.push(`line ${record.line}: ${client} of shop ${shop} is named again with another type`);
    }
  }
  if (records.length === 0) file.problems.push('the file holds no rows');
  return file;
}

function problemOf(shop: string, client: string, type: string): string | null {
  if (!isIdentifier(shop)) return `shop_id ${JSON.stringify(shop)} is not 1-64 of A-Z a-z 0-9 _ . : -`;
  if (!isIdentifier(client)) return `client_id ${JSON.stringify(client)} is not 1-64 of A-Z a-z 0-9 _ . : -`;
  if (!isType(type)) return `type ${JSON.stringify(type)} is not 主, 副, main or sub`;
  return null;
}

/** RFC 4180 records, each with the line it starts on; a quoted field may hold commas, quotes ("") and newlines. */
export function csvRecords(text: string): CsvRecord[] {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let isQuoted = false;
  let line = 1;
  let startLine = 1;
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (isQuoted) {
      if (char === '"' && source[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') {
        isQuoted = false;
      } else {
        if (char === '\n') line++;
        field += char;
      }
    } else if (char === '"' && field.trim() === '') {
      isQuoted = true;
      field = '';
    } else if (char === ',') {
      fields.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && source[i + 1] === '\n') i++;
      fields.push(field);
      records.push({ line: startLine, fields });
      fields = [];
      field = '';
      line++;
      startLine = line;
    } else {
      field += char;
    }
  }
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    records.push({ line: startLine, fields });
  }
  return records;
}
