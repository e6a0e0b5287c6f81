import {
  type handleServerStreamingCall,
  type handleUnaryCall,
  Server,
  ServerCredentials,
} from '@grpc/grpc-js'
import { ECHO_SERVICE, report, runChild, taskOf, untilStdinEnds } from './common.js'

/**
 * Child process: serves {@link ECHO_SERVICE} on the Unix socket given as `{"socket":…}` with a plain
 * grpc-js `bindAsync('unix:…')`, prints `{"ready":true}`, and stops when its stdin closes.
 */
async function main(): Promise<void> {
  const { socket } = taskOf<{ socket: string }>()
  const server = new Server()
  const echo: handleUnaryCall<Buffer, Buffer> = (call, callback) => callback(null, call.request)
  const echoStream: handleServerStreamingCall<Buffer, Buffer> = (call) => {
    call.write(call.request)
  }
  server.addService(ECHO_SERVICE, { Echo: echo, EchoStream: echoStream })
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  )
  report({ ready: true, pid: process.pid })
  await untilStdinEnds()
  server.forceShutdown()
}

runChild(main)
