import { describe, expect, it } from 'vitest'
import { findUriSanProblem } from './uri-san.js'

describe('findUriSanProblem', () => {
  it.each([
    'spiffe://example.org/ns/prod/sa/web',
    'spiffe://example.org',
    'spiffe://10.0.0.1/svc',
    'spiffe://k8s_west.example.com/a',
    'https://user@example.org:8443/a?b#c',
    'spiffe://example.org/a%20b',
    'urn:uuid:9eebccd2-12bf-40a6-b262-65fe0487d453',
    'file:///etc/hosts',
    'relative/path',
    'spiffe://[::1]/a',
  ])('accepts %s', (uri) => {
    expect(findUriSanProblem(uri)).toBeUndefined()
  })

  it.each([
    'spiffe://a..b/x',
    'spiffe://.a/x',
    'spiffe://a./x',
    'spiffe://user@a..b/x',
    'spiffe://a..b?x',
    'spiffe://example.org/a\tb',
    'spiffe://example.org/a\u007fb',
    'spiffe://example.org/a%2',
    'spiffe://example.org/a%zz',
    'spiffe://ex ample.org/x',
  ])('refuses %j', (uri) => {
    expect(findUriSanProblem(uri)).toBeTypeOf('string')
  })
})
