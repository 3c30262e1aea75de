/**
 * Where a tenant's missed-call notices go (tenants.missed_call_notify): a phone number (sms) or an
 * e-mail address. Pure, so that the snapshot checks the column (a typo is a finding, not notices
 * that silently never leave) with the same function the queue uses.
 */
export type NotifyChannel = 'sms' | 'email';
export const NOTIFY_CHANNELS = ['sms', 'email'] as const satisfies readonly NotifyChannel[];

const EMAIL = /^[^\s@<>()[\],;:"\\]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
const PHONE = /^\+?[0-9]{5,20}$/;

/** tenants.missed_call_notify → where to send: a phone number (sms), an e-mail address, or nothing. */
export function notifyTarget(value: string | null): { channel: NotifyChannel; recipient: string } | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (trimmed.length <= 254 && EMAIL.test(trimmed)) return { channel: 'email', recipient: trimmed };
  const phone = trimmed.replace(/[\s-]/g, ''); // DBAs type 139-1234-5678 or 139 1234 5678
  if (PHONE.test(phone)) return { channel: 'sms', recipient: phone };
  return null;
}

