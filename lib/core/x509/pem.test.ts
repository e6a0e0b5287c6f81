import { X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { IdentityError } from '../errors.js'
import { decodePem, encodePem } from './pem.js'
import { caCertPem, leafCertPem, leafKeyPem } from './test-fixtures.js'

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'none'
  } catch (err) {
    return err instanceof IdentityError ? err.code : 'foreign'
  }
}

describe('decodePem', () => {
  it('decodes a certificate block', () => {
    const [der, ...rest] = decodePem(leafCertPem)
    expect(rest).toEqual([])
    expect(der!.equals(new X509Certificate(leafCertPem).raw)).toBe(true)
  })

  it('returns every block in order, or only those with the label', () => {
    const text = `intro\n${leafCertPem}between\n${leafKeyPem}\n${caCertPem}trailer`
    const all = decodePem(text)
    expect(all).toHaveLength(3)
    const certs = decodePem(text, 'CERTIFICATE')
    expect(certs.map((d) => new X509Certificate(d).serialNumber)).toEqual([
      'E1',
      '1F2E3D4C5B6A79881726354453627180',
    ])
    expect(decodePem(text, 'PRIVATE KEY')).toEqual([all[1]])
    expect(decodePem(text, 'EC PRIVATE KEY')).toEqual([])
  })

  it.each([
    ['CRLF line endings', leafCertPem.replace(/\n/g, '\r\n')],
    ['bytes', Buffer.from(leafCertPem)],
    ['one long base64 line', leafCertPem.replace(/\n(?!-)/g, '').replace(/-----(?=M)/, '-----\n')],
  ])('accepts %s', (_name, input) => {
    expect(decodePem(input)[0]!.equals(decodePem(leafCertPem)[0]!)).toBe(true)
  })

  it.each([
    ['no blocks', 'just text', 0],
    ['an empty block', '-----BEGIN X-----\n-----END X-----\n', 1],
  ])('handles %s', (_name, input, count) => {
    expect(decodePem(input)).toHaveLength(count)
  })

  const body = leafCertPem.slice(leafCertPem.indexOf('\n') + 1, leafCertPem.indexOf('-----END'))
  it.each([
    ['an unterminated block', `-----BEGIN CERTIFICATE-----\n${body}`],
    ['a mismatched END label', `-----BEGIN CERTIFICATE-----\n${body}-----END PRIVATE KEY-----\n`],
    ['a character outside base64', `-----BEGIN X-----\nQUJD*A==\n-----END X-----\n`],
    ['base64 whose length is not a multiple of 4', `-----BEGIN X-----\nQUJDR\n-----END X-----\n`],
    ['padding in the middle', `-----BEGIN X-----\nQQ==QUJD\n-----END X-----\n`],
    ['three padding characters', `-----BEGIN X-----\nQ===\n-----END X-----\n`],
    ['a header line', `-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n\nQUJD\n-----END X-----\n`],
    [
      'a block inside a block',
      `-----BEGIN X-----\n-----BEGIN Y-----\nQUJD\n-----END Y-----\n-----END X-----\n`,
    ],
    ['a bad block after a good one', `${leafCertPem}-----BEGIN X-----\n!!!!\n-----END X-----\n`],
  ])('refuses %s', (_name, input) => {
    expect(codeOf(() => decodePem(input))).toBe('ERR_PEM_MALFORMED')
    expect(codeOf(() => decodePem(input, 'CERTIFICATE'))).toBe('ERR_PEM_MALFORMED')
  })
})

describe('encodePem', () => {
  it('writes 64-column lines and a trailing newline', () => {
    const der = decodePem(leafCertPem)[0]!
    const pem = encodePem('CERTIFICATE', der)
    const lines = pem.split('\n')
    expect(lines[0]).toBe('-----BEGIN CERTIFICATE-----')
    expect(lines.at(-2)).toBe('-----END CERTIFICATE-----')
    expect(lines.at(-1)).toBe('')
    expect(lines.slice(1, -3).every((line) => line.length === 64)).toBe(true)
    expect(lines.at(-3)!.length).toBeLessThanOrEqual(64)
    expect(pem).toBe(leafCertPem.trimStart())
  })

  it.each([0, 1, 47, 48, 49, 96, 1000])('round-trips %i bytes', (length) => {
    const der = Buffer.alloc(length, 0xa5)
    expect(decodePem(encodePem('X509 CRL', der), 'X509 CRL')).toEqual([der])
  })

  it.each(['', 'A-B', 'LINE\nBREAK', ' LEADING', 'TWO  SPACES'])('refuses the label %j', (label) => {
    expect(codeOf(() => encodePem(label, Buffer.from([1])))).toBe('ERR_PEM_MALFORMED')
  })
})
