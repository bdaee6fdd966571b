"""The composition root: `Runtime` (runtime.py) builds the concrete stores, queues, workers and use-case dependencies
from Settings once per process; the chat core, the board, exception notes and stock are wired beside it, and the
staff API's backends over storage live here too."""
