import { generateKeyPair, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { discoveryDocument, publicJwks } from './discovery-documents.js'

const td = TrustDomain.parse('example.org')
let ec: KeyObject
let rsa: KeyObject

beforeAll(async () => {
  const generate = promisify(generateKeyPair)
  ec = (await generate('ec', { namedCurve: 'P-256' })).privateKey
  rsa = (await generate('rsa', { modulusLength: 2048 })).privateKey
})

describe('publicJwks', () => {
  it('lists every JWT authority as a public signing key with its algorithm, nothing private', () => {
    const bundle = JwtBundle.fromAuthorities(td, [
      { kid: 'a', key: ec },
      { kid: 'b', key: rsa },
    ])
    const { keys } = publicJwks(bundle)
    expect(keys.map((k) => [k['kid'], k['kty'], k['use'], k['alg']])).toEqual([
      ['a', 'EC', 'sig', 'ES256'],
      ['b', 'RSA', 'sig', 'RS256'],
    ])
    for (const k of keys)
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k[secret]).toBeUndefined()
  })
})

describe('discoveryDocument', () => {
  it('puts jwks_uri under the issuer, and the algorithms of the keys served', () => {
    const jwks = publicJwks(JwtBundle.fromAuthorities(td, [{ kid: 'a', key: ec }]))
    expect(discoveryDocument('https://oidc.example.org/td', jwks)).toMatchObject({
      issuer: 'https://oidc.example.org/td',
      jwks_uri: 'https://oidc.example.org/td/keys',
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
    })
  })
})
