"""Stopping `train` cleanly on SIGTERM or SIGINT: what preemption, `kill`, `timeout` and Ctrl-C send.

Kubernetes pod eviction and Slurm preemption send SIGTERM and wait a grace period before
SIGKILL. The first SIGTERM or SIGINT only asks to stop: the step under way finishes, train
saves a checkpoint of the epoch so far, marks its MLflow run KILLED and exits with one line
saying how to resume (exit status 128 + the signal, as a shell reports a signal). The rerun
resumes from that step, weight-equal to a run never stopped. A second signal stops at once,
as either does outside training (`core.errors.run_stage`: raised as KeyboardInterrupt).

Every worker of a multi-worker run stops at the same step: each step sums the workers'
requests (`requested_tensor`), so a signal to any one of them stops them all.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from colorizer.core.errors import UserError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(UserError):
    """Training stopped on a signal, its state saved; the message says how to resume."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopRequest:
    """Set by the first SIGTERM or SIGINT while `installed`; read between training steps."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def requested_tensor(self):
        """1.0 if a stop was asked for in this process, else 0.0 (a step sums it over workers)."""
        import tensorflow as tf

        return tf.constant(1.0 if self.requested else 0.0)

    @contextlib.contextmanager
    def installed(self):
        """Catch the signals for the block (signal handlers can only be set from the main thread:
        elsewhere, e.g. a test's thread, the defaults stay)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.getsignal(signum) for signum in SIGNALS}

        def ask_to_stop(signum, frame):
            self.signum = signum
            for other in SIGNALS:  # a second signal: the default behaviour, at once
                signal.signal(other, previous[other])
            print(f"train: {signal.Signals(signum).name} received: stopping after this step and saving a "
                  "checkpoint (send it again to stop at once)", flush=True)

        for signum in SIGNALS:
            signal.signal(signum, ask_to_stop)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
