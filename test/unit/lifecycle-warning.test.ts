import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { buildWarningMessage, warningSubject } from '../../src/lifecycle/index.js';

const ADDRESS = 'dr.lefevre@op.mssante.test';
const DATE = new Date('2026-03-02T02:15:03.000Z');

describe('inactivity warning message', () => {
  it('is a French UTF-8 message, quoted-printable, from our postmaster to the mailbox', async () => {
    const built = buildWarningMessage({
      address: ADDRESS,
      // 23:30 UTC on the 16th is already the 17th in Paris.
      unpublishAt: new Date('2026-03-16T23:30:00.000Z'),
      lastActivityAt: new Date('2026-01-31T09:00:00.000Z'),
      inactivityDays: 45,
      timeZone: 'Europe/Paris',
      date: DATE,
      messageId: '<warning-1@op.mssante.test>',
    });
    expect(built.envelope).toEqual({ from: '', to: ADDRESS });
    expect(built.subject).toBe('Votre adresse MSSanté sera dépubliée le 17/03/2026');

    const text = built.raw.toString('latin1');
    // RFC 5322 §2.1.1 / §2.3: ASCII only, CRLF only, lines within 78 octets.
    expect([...built.raw].every((byte) => byte < 0x80)).toBe(true);
    expect(text.replace(/\r\n/g, '').includes('\n')).toBe(false);
    expect(Math.max(...text.split('\r\n').map((l) => l.length))).toBeLessThanOrEqual(78);
    expect(text).toContain('Content-Transfer-Encoding: quoted-printable\r\n');
    expect(text).toContain('Auto-Submitted: auto-generated\r\n');

    const mail = await simpleParser(built.raw);
    expect(mail.subject).toBe('Votre adresse MSSanté sera dépubliée le 17/03/2026');
    expect(mail.from?.value).toEqual([{ address: 'postmaster@op.mssante.test', name: 'Postmaster MSSanté' }]);
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : undefined).toBe(ADDRESS);
    expect(mail.messageId).toBe('<warning-1@op.mssante.test>');
    expect(mail.date?.toISOString()).toBe(DATE.toISOString());
    const body = mail.text ?? '';
    expect(body).toContain(ADDRESS);
    expect(body).toContain('à partir du 17/03/2026');
    expect(body).toContain('Sa dernière utilisation date du 31/01/2026.');
    expect(body).toContain('inutilisées pendant 45 jours');
    // How to keep it published: any connection or sending from the mailbox; receiving does not count.
    expect(body).toContain('une connexion depuis votre');
    expect(body).toContain('l’envoi d’un message depuis cette');
    expect(body).toContain('Recevoir des messages ne compte pas');
  });

  it('says when a mailbox was never used, and makes a Message-ID of its own', async () => {
    const built = buildWarningMessage({
      address: ADDRESS,
      unpublishAt: new Date('2026-07-01T01:15:00.000Z'),
      inactivityDays: 45,
      timeZone: 'Europe/Paris',
      date: DATE,
    });
    const mail = await simpleParser(built.raw);
    expect(mail.text).toContain('n’a encore jamais été utilisée');
    expect(mail.messageId).toMatch(/^<lifecycle-[0-9a-f-]{36}@op\.mssante\.test>$/);
  });

  it('writes the date of the configured time zone', () => {
    const instant = new Date('2026-03-16T23:30:00.000Z');
    expect(warningSubject(instant, 'UTC')).toBe('Votre adresse MSSanté sera dépubliée le 16/03/2026');
    expect(warningSubject(instant, 'Europe/Paris')).toBe(
      'Votre adresse MSSanté sera dépubliée le 17/03/2026',
    );
  });
});
