import { describe, expect, it } from 'vitest'
import { withoutHopByHop } from './hop-by-hop.js'

describe('withoutHopByHop', () => {
  it('drops the hop-by-hop headers and those Connection names, keeping the rest as they came', () => {
    const headers = {
      connection: 'keep-alive, X-Private',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'proxy-authorization': 'Bearer t',
      'http2-settings': 'AAA',
      upgrade: 'h2c',
      'x-private': 'secret',
      accept: 'text/html',
      'set-cookie': ['a=1', 'b=2'],
    }
    expect(withoutHopByHop(headers)).toEqual({ accept: 'text/html', 'set-cookie': ['a=1', 'b=2'] })
  })

  it('also drops what the caller picks, whatever the case Connection names them in', () => {
    const headers = { connection: 'close, X-A', 'x-a': '1', 'x-b': '2', authorization: 'Bearer t' }
    expect(withoutHopByHop(headers, (name) => name === 'authorization')).toEqual({ 'x-b': '2' })
  })
})
