# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Children of the API process do not keep the API's listening socket.

actinia's local queue is a ``multiprocessing`` child forked from the
gunicorn worker when the app is loaded, and every job is forked from it.
A fork copies all file descriptors, so these processes hold gunicorn's
listening socket although they never accept a connection. actinia's queue
child ignores SIGTERM; when the gunicorn master is stopped or lost it stays
behind, and a new API cannot bind its port ("Address already in use") until
someone kills the orphans by hand.

:func:`register` installs an ``os.register_at_fork`` hook in the API
process: in every child made by ``os.fork`` (multiprocessing's fork start
method) the listening TCP sockets are closed at once. The parent keeps
them; processes started with ``subprocess`` close inherited descriptors
anyway (``close_fds=True``).
"""

from __future__ import annotations

import os
import socket
import stat

_registered = False


def listening_fds() -> list[int]:
    """File descriptors of this process that are listening TCP sockets."""
    found = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            probe = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if probe.type == socket.SOCK_STREAM and probe.getsockopt(
                    socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                found.append(fd)
        except OSError:
            pass
        finally:
            probe.close()
    return found


def close_listening_sockets() -> None:
    for fd in listening_fds():
        try:
            os.close(fd)
        except OSError:
            pass


def register() -> None:
    """Once per process: forked children close the listening sockets."""
    global _registered
    if not _registered:
        os.register_at_fork(after_in_child=close_listening_sockets)
        _registered = True
