# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The unit tests' only hook (src/ is on the path by pytest.ini; no real
stack here: its fixtures are tests/integration/conftest.py's)."""

import sys


def pytest_sessionfinish(session, exitstatus):
    """Unit tests import actinia modules but start no process queue; drop
    actinia's atexit hook that would try to stop one at shutdown."""
    import atexit

    queue = sys.modules.get("actinia_core.core.common.process_queue")
    if queue is not None:
        atexit.unregister(queue.stop_process_queue)
