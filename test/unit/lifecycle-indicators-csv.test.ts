import { describe, expect, it } from 'vitest';
import {
  INDICATOR_CSV_COLUMNS,
  indicatorCsvHeader,
  indicatorCsvLine,
  cdaCodes,
  softwareLabel,
  type IndicatorRow,
} from '../../src/lifecycle/index.js';

const ROW: IndicatorRow = {
  month: '2026-03',
  address: 'secretariat@op.mssante.test',
  type: 'ORG',
  status: 'active',
  createdAt: '2026-01-02T10:00:00.000Z',
  imapLogins: 12,
  submissionLogins: 3,
  applicationLogins: 0,
  activeDays: 9,
  lastConnectionAt: '2026-03-30T08:00:00.000Z',
  messagesSent: 7,
  messagesSentIntra: 2,
  messagesSentInter: 5,
  messagesSentToPatients: 1,
  messagesSentWithCda: 4,
  messagesReceived: 20,
  messagesReceivedIntra: 15,
  messagesReceivedInter: 5,
  messagesReceivedWithCda: 0,
  messagesSentWithIns: 3,
  messagesReceivedWithIns: 0,
  messagesSentMesFin: 1,
  messagesReceivedMesFin: 0,
  dsnSent: 0,
  dsnReceived: 2,
  mdnSent: 1,
  mdnReceived: 0,
  softwareSent: { 'LPS "Cabinet", v2': 5, 'Mailer;x=1': 2 },
  softwareReceived: {},
  cdaCodesSent: { '11488-4': 3, '34133-9': 1 },
  cdaCodesReceived: {},
  balCreated: 1,
  balSuspended: 2,
  balDeleted: 0,
};

describe('indicators CSV', () => {
  it('has one documented header line', () => {
    expect(indicatorCsvHeader()).toBe(`${INDICATOR_CSV_COLUMNS.join(',')}\r\n`);
    expect(INDICATOR_CSV_COLUMNS).toContain('last_connection_at');
    expect(INDICATOR_CSV_COLUMNS).toHaveLength(34);
  });

  it('quotes fields as RFC 4180 says, and keeps the software cell parseable', () => {
    const line = indicatorCsvLine(ROW);
    expect(line.endsWith('\r\n')).toBe(true);
    expect(line).toBe(
      '2026-03,secretariat@op.mssante.test,ORG,active,2026-01-02T10:00:00.000Z,12,3,0,9,' +
        '2026-03-30T08:00:00.000Z,7,2,5,1,4,20,15,5,0,3,0,1,0,0,2,1,0,' +
        '"LPS ""Cabinet"", v2=5;Mailer_x_1=2",,11488-4=3;34133-9=1,,1,2,0\r\n',
    );
    expect(indicatorCsvLine({ ...ROW, lastConnectionAt: undefined }).split(',')[9]).toBe('');
  });

  it('reads X-MSS-CODECDA as LOINC-like codes, each once per message, anything else as (other)', () => {
    expect(cdaCodes(' 11488-4, 34133-9 ,11488-4,,')).toEqual(['11488-4', '34133-9']);
    expect(cdaCodes('11488-4;DROP,x y,é')).toEqual(['(other)']);
    expect(cdaCodes(`${'1'.repeat(33)},18748-4`)).toEqual(['(other)', '18748-4']);
    expect(cdaCodes(Array.from({ length: 50 }, (_, i) => `C${i}`).join(','))).toHaveLength(32);
    expect(cdaCodes(undefined)).toEqual([]);
  });

  it('stores X-MSS-NIL as bounded printable ASCII', () => {
    expect(softwareLabel('  Logiciel\tMédical 3.1\r\n')).toBe('Logiciel M?dical 3.1');
    expect(softwareLabel('x'.repeat(200))).toHaveLength(64);
    expect(softwareLabel('   ')).toBeUndefined();
    expect(softwareLabel(undefined)).toBeUndefined();
  });
});
