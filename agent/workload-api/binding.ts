import type { Socket } from 'node:net'
import { bindingOf, ConnectionBinding, setPassCredentials } from '../../common/peercred/peer-binding.js'
import { relayConnection } from '../../common/peercred/peer-relay.js'
import { fdOf } from '../../common/peercred/peercred.js'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import { IdentityError } from '../../lib/core/errors.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'

/** How long a refused connection stays open so that the refusal itself reaches the caller. */
const CLOSE_AFTER_REFUSAL_MS = 100

type BindingDeps = Pick<WorkloadApiDeps, 'audit' | 'log'>

/**
 * Binds an admitted connection to its process (DESIGN §6.1). A later violation is audited once
 * (`call.denied`, method `connection`) and closes the connection shortly after, once the refusal
 * of the call that found it has been sent; every call meanwhile is refused too.
 * @throws what {@link ConnectionBinding.bind} throws
 */
export async function bindOrClose(socket: Socket, facts: ProcessFacts, deps: BindingDeps): Promise<void> {
  await ConnectionBinding.bind(fdOf(socket), facts, {
    onViolation: (err) => {
      deps.audit.callDenied({
        method: 'connection',
        code: err.code,
        reason: err.message,
        caller: workloadCaller(facts),
      })
      deps.log.warn({ pid: facts.pid, uid: facts.uid, code: err.code }, 'Workload API connection refused.')
      setTimeout(() => socket.destroy(), CLOSE_AFTER_REFUSAL_MS).unref()
    },
  })
}

/** Releases the facts of a connection refused during admission, then passes the error on. */
export function closeFacts(facts: ProcessFacts): (err: unknown) => never {
  return (err) => {
    facts.close()
    throw err
  }
}

/**
 * The UdsServer hooks of a bound Workload API: SO_PASSCRED on the listening socket, and the relay
 * that refuses bytes from any process but the connector (ERR_PEER_SOCKET_HANDED_ON).
 */
export function bindingHooks(deps: BindingDeps) {
  return {
    onListening: (fd: number) => setPassCredentials(fd),
    connectionFor: (socket: Socket, facts: ProcessFacts) =>
      relayConnection(socket, facts.pid, (sender) => {
        const err = new IdentityError(
          'ERR_PEER_SOCKET_HANDED_ON',
          `bytes on the connection came from pid ${sender}, not from the connecting pid ${facts.pid}`,
        )
        const binding = bindingOf(facts)
        if (binding) binding.refuse(err)
        else
          deps.audit.callDenied({
            method: 'connection',
            code: err.code,
            reason: err.message,
            caller: workloadCaller(facts),
          })
      }),
  }
}
