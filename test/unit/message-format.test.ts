import { describe, expect, it } from 'vitest';
import { indicatorHeadersOf, mailDate, scanHeaders } from '../../src/delivery/index.js';

const MESSAGE = [
  'Received: from a by b;',
  '\tTue, 04 Mar 2025 10:00:00 +0000',
  'From: Dr Durand <emile.durand@op.mssante.test>',
  'Sender: <secretariat@op.mssante.test>',
  'Message-ID:   <orig-1@op.mssante.test>  ',
  'Content-Type: multipart/report;',
  '  report-type="delivery-status";',
  '\tboundary="b1"',
  'X-MSS-NIL: LPS-1.0',
  'X-MSS-CODECDA:',
  'Subject: first',
  'Subject: second',
  'X.Y: dotted',
  '',
  'Body-Header: not a header',
  '',
].join('\r\n');

describe('scanHeaders', () => {
  const headers = scanHeaders(Buffer.from(MESSAGE, 'latin1'));
  it.each([
    ['From', 'Dr Durand <emile.durand@op.mssante.test>'],
    ['from', 'Dr Durand <emile.durand@op.mssante.test>'],
    ['MESSAGE-ID', '<orig-1@op.mssante.test>'],
    ['Received', 'from a by b; Tue, 04 Mar 2025 10:00:00 +0000'],
    ['Content-Type', 'multipart/report; report-type="delivery-status"; boundary="b1"'],
    ['X-MSS-NIL', 'LPS-1.0'],
    ['X-MSS-CODECDA', ''],
    ['Subject', 'first'],
    ['X.Y', 'dotted'],
    ['XXY', undefined],
    ['Body-Header', undefined],
    ['To', undefined],
    ['Message', undefined],
  ])('%s → %j', (name, expected) => {
    expect(headers.value(name)).toBe(expected);
  });

  it.each([
    ['LF line endings', 'A: 1\n  continued\nB: 2\n\nC: 3\n', { A: '1 continued', B: '2', C: undefined }],
    ['no body', 'A: 1\r\nB: 2', { A: '1', B: '2' }],
    ['empty message', '', { A: undefined }],
    ['body only', '\r\n\r\nA: 1\r\n', { A: undefined }],
    ['latin1 octets', 'Subject: r\xe9sultats\r\n\r\n', { Subject: 'r\xe9sultats' }],
  ])('%s', (_what, text, expected: Record<string, string | undefined>) => {
    const scanned = scanHeaders(text);
    for (const [name, value] of Object.entries(expected)) expect(scanned.value(name)).toBe(value);
  });

  it('reads a Buffer octet for octet (latin1), as the spool holds it', () => {
    const raw = Buffer.concat([Buffer.from('Subject: '), Buffer.from([0xc3, 0xa9]), Buffer.from('\r\n\r\n')]);
    expect(scanHeaders(raw).value('Subject')).toBe('\xc3\xa9');
  });
});

describe('indicatorHeadersOf', () => {
  it('keeps every X-MSS header the indicators count, and the report type of a multipart/report', () => {
    const head = [
      'From: <a@op.example>',
      'X-MSS-CODECDA: 11488-4,',
      ' 34133-9',
      'x-mss-ins: O',
      'X-MSS-MES: FIN',
      'X-MSS-NIL: LPS 1.0',
      'Content-Type: multipart/report; report-type="Disposition-Notification";',
      '\tboundary="b"',
      '',
      'X-MSS-NIL: in the body, not a header',
    ].join('\r\n');
    expect(indicatorHeadersOf(scanHeaders(head))).toEqual({
      cda: '11488-4, 34133-9',
      ins: 'O',
      mes: 'FIN',
      nil: 'LPS 1.0',
      reportType: 'disposition-notification',
    });
    expect(indicatorHeadersOf(scanHeaders('Subject: x\r\n\r\nbody'))).toEqual({});
    // A sender cannot grow the spool envelope.
    expect(indicatorHeadersOf(scanHeaders(`X-MSS-NIL: ${'x'.repeat(5000)}\r\n\r\n`)).nil).toHaveLength(256);
  });
});

describe('mailDate', () => {
  it.each([
    ['2025-03-04T10:00:00Z', 'Tue, 04 Mar 2025 10:00:00 +0000'],
    ['2026-12-31T23:59:59.999Z', 'Thu, 31 Dec 2026 23:59:59 +0000'],
    ['2024-02-29T00:00:00+02:00', 'Wed, 28 Feb 2024 22:00:00 +0000'],
    ['1970-01-01T00:00:00Z', 'Thu, 01 Jan 1970 00:00:00 +0000'],
  ])('%s → %s', (iso, expected) => {
    expect(mailDate(new Date(iso))).toBe(expected);
  });
});
