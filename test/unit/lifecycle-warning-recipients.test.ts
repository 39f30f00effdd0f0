import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { buildWarningMessage, warningRecipients } from '../../src/lifecycle/index.js';

const BAL = 'secretariat@op.mssante.test';

describe('recipients of an inactivity warning', () => {
  it('is the mailbox alone without anyone else to tell', () => {
    expect(warningRecipients('Secretariat@OP.mssante.test', { owner: [], managers: [] })).toEqual([
      { channel: 'mailbox', address: BAL },
    ]);
  });

  it('sends to the mailbox, then the owner’s other addresses, then the managers’, each once', () => {
    const got = warningRecipients(BAL, {
      owner: ['dr.martin@op.mssante.test', BAL, 'Dr.Martin@ailleurs.mssante.fr'],
      managers: ['dr.martin@op.mssante.test', 'chef@op.mssante.test', 'CHEF@op.mssante.test', 'sans-arobase'],
    });
    expect(got).toEqual([
      { channel: 'mailbox', address: BAL },
      { channel: 'owner_address', address: 'dr.martin@op.mssante.test' },
      { channel: 'owner_address', address: 'dr.martin@ailleurs.mssante.fr' },
      { channel: 'manager_address', address: 'chef@op.mssante.test' },
    ]);
  });

  it('addresses the same warning to another recipient, naming the warned mailbox', async () => {
    const built = buildWarningMessage({
      address: BAL,
      to: 'chef@ailleurs.mssante.fr',
      unpublishAt: new Date('2026-03-16T10:00:00.000Z'),
      inactivityDays: 45,
      timeZone: 'Europe/Paris',
      date: new Date('2026-03-01T10:00:00.000Z'),
    });
    expect(built.envelope).toEqual({ from: '', to: 'chef@ailleurs.mssante.fr' });
    const mail = await simpleParser(built.raw);
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : undefined).toBe(
      'chef@ailleurs.mssante.fr',
    );
    expect(mail.text).toContain(BAL);
  });
});
