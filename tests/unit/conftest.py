# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the package importable from the source tree (not pip-installed yet)."""

import os
import sys

_SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "src"))
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)


def pytest_sessionfinish(session, exitstatus):
    """Unit tests import actinia modules but start no process queue; drop
    actinia's atexit hook that would try to stop one at shutdown."""
    import atexit

    queue = sys.modules.get("actinia_core.core.common.process_queue")
    if queue is not None:
        atexit.unregister(queue.stop_process_queue)
