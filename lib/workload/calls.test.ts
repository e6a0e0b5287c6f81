import { EventEmitter } from 'node:events'
import { type ClientReadableStream, Metadata, status } from '@grpc/grpc-js'
import { describe, expect, it } from 'vitest'
import { IdentityError } from '../core/errors.js'
import { type CallContext, type Cancellable, firstMessage, securityMetadata, unaryCall } from './calls.js'
import { WorkloadApiError } from './workload-api-error.js'

class FakeStream extends EventEmitter {
  isCancelled = false
  cancel(): void {
    this.isCancelled = true
    this.end(status.CANCELLED, 'Cancelled on client')
  }
  end(code: status, details = ''): void {
    if (code !== status.OK)
      this.emit('error', Object.assign(new Error(details), { code, details, metadata: new Metadata() }))
    this.emit('status', { code, details, metadata: new Metadata() })
  }
}

function context(): CallContext {
  return { method: 'FetchX509SVID', options: { deadline: 123 }, open: new Set<Cancellable>() }
}

/** Starts `firstMessage` on a fake stream; returns both. */
function start<T>(parse: (m: unknown) => T) {
  const ctx = context()
  const stream = new FakeStream()
  let seen: { md: Metadata; options: unknown } | undefined
  const result = firstMessage(
    ctx,
    (md, options) => {
      seen = { md, options }
      return stream as unknown as ClientReadableStream<unknown>
    },
    parse,
  )
  return { ctx, stream, result, seen: () => seen }
}

describe('securityMetadata', () => {
  it('carries workload.spiffe.io: true, once', () => {
    expect(securityMetadata().get('workload.spiffe.io')).toEqual(['true'])
  })
})

describe('firstMessage', () => {
  it('sends the security header and the deadline, resolves the parsed first message and cancels the stream', async () => {
    const { ctx, stream, result, seen } = start((m) => `parsed ${String(m)}`)
    expect(seen()?.md.get('workload.spiffe.io')).toEqual(['true'])
    expect(seen()?.options).toEqual({ deadline: 123 })
    expect(ctx.open.size).toBe(1)
    stream.emit('data', 'one')
    stream.emit('data', 'two')
    await expect(result).resolves.toBe('parsed one')
    expect(stream.isCancelled).toBe(true)
    expect(ctx.open.size).toBe(0)
  })

  it('rejects with the parse error (and does not throw from the event)', async () => {
    const { stream, result } = start(() => {
      throw new IdentityError('ERR_X509_SVID_INVALID', 'bad')
    })
    stream.emit('data', 'x')
    await expect(result).rejects.toMatchObject({ code: 'ERR_X509_SVID_INVALID' })
  })

  it('rejects with the status when the stream fails first', async () => {
    const { ctx, stream, result } = start((m) => m)
    stream.end(status.PERMISSION_DENIED, 'no identity issued')
    const err = await result.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WorkloadApiError)
    expect(err).toMatchObject({ code: 'ERR_NO_IDENTITY', status: status.PERMISSION_DENIED })
    expect(ctx.open.size).toBe(0)
  })

  it('rejects when the agent ends the stream without a message', async () => {
    const { stream, result } = start((m) => m)
    stream.end(status.OK)
    await expect(result).rejects.toMatchObject({ code: 'ERR_WORKLOAD_API_UNAVAILABLE', status: status.OK })
  })
})

describe('unaryCall', () => {
  it('sends the header, resolves the answer and forgets the call', async () => {
    const ctx = context()
    let md: Metadata | undefined
    const result = unaryCall<string>(ctx, (m, _o, cb) => {
      md = m
      setImmediate(() => cb(null, 'answer'))
      return { cancel: () => {} }
    })
    expect(ctx.open.size).toBe(1)
    await expect(result).resolves.toBe('answer')
    expect(md?.get('workload.spiffe.io')).toEqual(['true'])
    expect(ctx.open.size).toBe(0)
  })

  it('uses the code the agent attached to a failure', async () => {
    const metadata = new Metadata()
    metadata.set('tessera-error-code', 'ERR_JWT_EXPIRED')
    const failure = Object.assign(new Error('expired'), {
      code: status.INVALID_ARGUMENT,
      details: 'expired',
      metadata,
    })
    const result = unaryCall<string>(context(), (_m, _o, cb) => {
      setImmediate(() => cb(failure as never))
      return { cancel: () => {} }
    })
    await expect(result).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED', status: status.INVALID_ARGUMENT })
  })

  it('ignores a trailer code it does not know', async () => {
    const metadata = new Metadata()
    metadata.set('tessera-error-code', 'ERR_FROM_THE_FUTURE')
    const failure = Object.assign(new Error('x'), { code: status.INVALID_ARGUMENT, details: 'x', metadata })
    const result = unaryCall<string>(context(), (_m, _o, cb) => {
      setImmediate(() => cb(failure as never))
      return { cancel: () => {} }
    })
    await expect(result).rejects.toMatchObject({ code: 'ERR_REQUEST_INVALID' })
  })
})
