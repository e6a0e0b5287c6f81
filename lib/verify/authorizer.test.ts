import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../core/errors.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { TrustDomain } from '../core/trust-domain.js'
import {
  type Authorizer,
  authorizeAny,
  authorizeId,
  authorizeMatching,
  authorizeMemberOf,
  authorizeOneOf,
} from './authorizer.js'

const id = (s: string) => SpiffeId.parse(s)
const AGENT = 'spiffe://example.org/agent/claude'

/** 'allowed', or the error code the authorizer threw. */
function outcome(authorizer: Authorizer, peer: string): string {
  try {
    authorizer(id(peer))
    return 'allowed'
  } catch (err) {
    return isIdentityError(err) ? err.code : 'not an IdentityError'
  }
}

describe('authorizers', () => {
  it.each<[string, Authorizer, string, string]>([
    ['any: a member', authorizeAny(), AGENT, 'allowed'],
    ['any: another trust domain', authorizeAny(), 'spiffe://other.org/x', 'allowed'],
    ['id: the same ID', authorizeId(id(AGENT)), AGENT, 'allowed'],
    ['id: a sibling', authorizeId(id(AGENT)), 'spiffe://example.org/agent/other', 'ERR_PEER_UNAUTHORIZED'],
    ['id: a child path', authorizeId(id(AGENT)), `${AGENT}/sub`, 'ERR_PEER_UNAUTHORIZED'],
    [
      'id: same path, other TD',
      authorizeId(id(AGENT)),
      'spiffe://other.org/agent/claude',
      'ERR_PEER_UNAUTHORIZED',
    ],
    [
      'one of: first',
      authorizeOneOf(id('spiffe://example.org/a'), id('spiffe://example.org/b')),
      'spiffe://example.org/a',
      'allowed',
    ],
    [
      'one of: second',
      authorizeOneOf(id('spiffe://example.org/a'), id('spiffe://example.org/b')),
      'spiffe://example.org/b',
      'allowed',
    ],
    [
      'one of: neither',
      authorizeOneOf(id('spiffe://example.org/a'), id('spiffe://example.org/b')),
      'spiffe://example.org/c',
      'ERR_PEER_UNAUTHORIZED',
    ],
    ['one of: none listed', authorizeOneOf(), 'spiffe://example.org/a', 'ERR_PEER_UNAUTHORIZED'],
    ['member of: member', authorizeMemberOf(TrustDomain.parse('example.org')), AGENT, 'allowed'],
    [
      'member of: other TD',
      authorizeMemberOf(TrustDomain.parse('example.org')),
      'spiffe://other.org/x',
      'ERR_PEER_UNAUTHORIZED',
    ],
    [
      'member of: a suffix TD',
      authorizeMemberOf(TrustDomain.parse('example.org')),
      'spiffe://evilexample.org/x',
      'ERR_PEER_UNAUTHORIZED',
    ],
    [
      'member of: a sub-domain TD',
      authorizeMemberOf(TrustDomain.parse('example.org')),
      'spiffe://a.example.org/x',
      'ERR_PEER_UNAUTHORIZED',
    ],
    ['matching: accepted', authorizeMatching((p) => p.path.startsWith('/agent/')), AGENT, 'allowed'],
    [
      'matching: refused',
      authorizeMatching((p) => p.path.startsWith('/tools/')),
      AGENT,
      'ERR_PEER_UNAUTHORIZED',
    ],
  ])('%s', (_name, authorizer, peer, expected) => {
    expect(outcome(authorizer, peer)).toBe(expected)
  })
})
