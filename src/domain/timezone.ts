import { IANAZone } from 'luxon';

/** True for zones the runtime's ICU knows (Asia/Shanghai, America/New_York …). */
export function isValidTimeZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}
