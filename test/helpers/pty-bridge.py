# Runs a command under a real pseudo-terminal (python3's pty module; no npm pty package): what this
# script reads on stdin is typed at the terminal, what the command prints there comes out on stdout.
# Exits with the command's status once it has ended and its output is read.
# Usage: python3 pty-bridge.py <command> [args...]
import os, select, subprocess, sys

master, slave = os.openpty()
child = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
inputs = [master, sys.stdin.fileno()]
while True:
    ready, _, _ = select.select(inputs, [], [])
    if master in ready:
        try:
            data = os.read(master, 4096)
        except OSError:
            data = b''
        if not data:
            break
        os.write(sys.stdout.fileno(), data)
    if sys.stdin.fileno() in ready:
        data = os.read(sys.stdin.fileno(), 4096)
        if data:
            os.write(master, data)
        else:
            os.write(master, b'\x04')  # end of input, as Ctrl-D at the start of a line
            inputs.remove(sys.stdin.fileno())
sys.exit(child.wait())
