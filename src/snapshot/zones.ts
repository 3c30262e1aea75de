/**
 * A tenant's time zone for everything that counts by local day or month (caps periods, charging,
 * spend guards, the live-call job, reports, the click-to-call cap check, the CLIs): the zone of
 * the tenant in the snapshot in force, which readers.ts has validated (a typo such as
 * 'Asia/Shangai' keeps the row's last good zone, with a finding; CST is read as the default). A
 * tenant the snapshot does not hold (its row refused, a finding says why) counts in the default
 * zone. Nothing parses tenants.timezone itself: one zone per tenant everywhere, the one
 * `npm run config:lint` and `route explain` show.
 */
import { DEFAULT_TIMEZONE } from '../domain/periods';
import type { Tenant } from './types';

/** The zone of a tenant, by id. */
export type TenantZones = (tenantId: number) => string;

export function liveTenantZone(tenants: ReadonlyMap<number, Pick<Tenant, 'timezone'>>, tenantId: number): string {
  return tenants.get(tenantId)?.timezone ?? DEFAULT_TIMEZONE;
}

/** TenantZones over whatever snapshot is in force when asked (store.current changes on reloads). */
export function zonesOf(tenants: () => ReadonlyMap<number, Pick<Tenant, 'timezone'>>): TenantZones {
  return (tenantId) => liveTenantZone(tenants(), tenantId);
}
