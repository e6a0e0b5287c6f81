const DNS_NAME =
  /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i

/** True when `name` is a host name a certificate may carry (LDH labels, optionally one leading `*.`). */
export function isValidDnsName(name: string): boolean {
  return typeof name === 'string' && DNS_NAME.test(name)
}
