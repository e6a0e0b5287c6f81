// Run inside `tessera launch`: tries each TCP address in argv directly, then the first one through
// $HTTPS_PROXY with CONNECT, and prints one JSON line: {direct: {addr: 'ok'|errno}, viaProxy: text|errno}.
// Usage: node launch-netcheck.mjs HOST:PORT...
import { connect } from 'node:net'

function split(addr) {
  const i = addr.lastIndexOf(':')
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) }
}

function direct(addr) {
  return new Promise((resolve) => {
    const { host, port } = split(addr)
    const s = connect({ host, port, timeout: 3000 })
    s.once('connect', () => {
      s.destroy()
      resolve('ok')
    })
    s.once('timeout', () => {
      s.destroy()
      resolve('ETIMEDOUT')
    })
    s.once('error', (err) => resolve(err.code ?? String(err)))
  })
}

function viaProxy(addr) {
  return new Promise((resolve) => {
    const proxy = process.env.HTTPS_PROXY
    if (!proxy) return resolve('NO_PROXY_SET')
    const url = new URL(proxy)
    const s = connect({ host: url.hostname, port: Number(url.port) })
    let text = ''
    s.once('connect', () => s.write(`CONNECT ${addr} HTTP/1.1\r\nHost: ${addr}\r\n\r\n`))
    s.on('data', (d) => {
      text += d.toString()
      const body = text.split('\r\n\r\n')[1]
      if (body) {
        s.destroy()
        resolve(body.trim())
      }
    })
    s.once('error', (err) => resolve(err.code ?? String(err)))
    s.setTimeout(5000, () => {
      s.destroy()
      resolve(`ETIMEDOUT after ${JSON.stringify(text)}`)
    })
  })
}

const addrs = process.argv.slice(2)
const results = {}
for (const a of addrs) results[a] = await direct(a)
process.stdout.write(`${JSON.stringify({ direct: results, viaProxy: await viaProxy(addrs[0]) })}\n`)
