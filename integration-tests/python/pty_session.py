"""Drives a program through a real pseudo-terminal, as a person at a terminal would.

    python pty_session.py STEPS_JSON -- PROGRAM ARG...

STEPS_JSON is a list of steps, each {"send": TEXT} and/or {"expect": TEXT}
(optionally "timeout" in seconds, default 60): TEXT is written to the
terminal as typed (a "\\r" is Enter, "\\u0003" Ctrl-C, "\\u0004" Ctrl-D), then
the output is read until TEXT of "expect" appears after what earlier steps
consumed. Prints one JSON document: {"steps": [output per step], "exit":
code or null, "output": everything, "failed": step index or null}. The
terminal answers the line editor's cursor-position query (ESC [6n), since
no real terminal emulator is attached. Standard library only.
"""

import json
import os
import pty
import select
import sys
import time

CURSOR_QUERY = b"\x1b[6n"


def main():
    steps = json.loads(sys.argv[1])
    assert sys.argv[2] == "--"
    program = sys.argv[3:]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.execvp(program[0], program)
    output = b""
    consumed = 0
    results = []
    failed = None

    def read_some(deadline):
        nonlocal output
        remaining = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
        if not ready:
            return True
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return False
        if not chunk:
            return False
        if CURSOR_QUERY in chunk:
            os.write(fd, b"\x1b[1;1R")
            chunk = chunk.replace(CURSOR_QUERY, b"")
        output += chunk
        return True

    alive = True
    for index, step in enumerate(steps):
        if "send" in step:
            os.write(fd, step["send"].encode())
        expect = step.get("expect")
        deadline = time.monotonic() + step.get("timeout", 60)
        if expect is None:
            # Give the program a moment to react before the next step.
            end = time.monotonic() + step.get("pause", 0.3)
            while alive and time.monotonic() < end:
                alive = read_some(end)
            results.append(output[consumed:].decode(errors="replace"))
            consumed = len(output)
            continue
        found = -1
        while found < 0 and time.monotonic() < deadline and alive:
            found = output.find(expect.encode(), consumed)
            if found < 0:
                alive = read_some(deadline)
        if found < 0:
            found = output.find(expect.encode(), consumed)
        if found < 0:
            failed = index
            results.append(output[consumed:].decode(errors="replace"))
            break
        end = found + len(expect.encode())
        results.append(output[consumed:end].decode(errors="replace"))
        consumed = end
    # Wait for the program to leave (the last step usually makes it).
    code = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if alive:
            alive = read_some(time.monotonic() + 0.2)
        else:
            time.sleep(0.05)
    if code is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    print(json.dumps({
        "steps": results,
        "exit": code,
        "output": output.decode(errors="replace"),
        "failed": failed,
    }))
    sys.stdout.flush()
    os._exit(0)


main()
