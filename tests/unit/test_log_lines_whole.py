"""Every line a process writes is one whole JSON object, whichever threads log at once.

Found by the CI's secrets-in-logs test: the worker's applier thread logged `applier_started`
while Celery's main thread logged its connection, and the log held both objects on one line.
structlog's `PrintLogger` wrote the message and its newline as two writes, so another thread's
line could fall between them (more often once the appliers ran at a lower priority).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINES = 3000

SCRIPT = f"""
import logging, sys, threading
import structlog
from shared.logging import configure_logging

sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
configure_logging()

def ours():
    log = structlog.get_logger("escalera.test")
    for n in range({LINES}):
        log.info("ours", n=n)

def theirs():  # a library's records, through the standard logging module
    for n in range({LINES}):
        logging.getLogger("celery.test").info("theirs %d", n)

threads = [threading.Thread(target=ours), threading.Thread(target=theirs)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_two_threads_logging_at_once_write_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "process.log"
    with out.open("w") as stderr:
        subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=ROOT, stderr=stderr, check=True, timeout=120
        )
    events = []
    for number, line in enumerate(out.read_text().splitlines(), start=1):
        try:
            events.append(json.loads(line)["event"])
        except ValueError:
            raise AssertionError(f"line {number} is not one JSON object: {line[:300]}") from None
    assert events.count("ours") == LINES
    assert sum(event.startswith("theirs ") for event in events) == LINES
