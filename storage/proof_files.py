"""Refund proof photos on disk under `<data_dir>/proofs/` (never served: no route reads this directory)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class ProofDirectory:
    """Implements handlers.refunds.ProofFiles. Names are chosen here (refund id + random), never by the sender."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(self, refund_id: int, data: bytes, kind: str) -> str:
        folder = self.root / str(int(refund_id))
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{secrets.token_hex(8)}.{'jpg' if kind == 'jpeg' else 'png'}"
        tmp = folder / (name + ".part")
        with open(tmp, "wb") as fh:  # written whole, then renamed: a crash never leaves half a photo under its name
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(folder / name)
        return f"{int(refund_id)}/{name}"

    def read(self, relative: str) -> bytes:
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("outside the proofs directory")
        return path.read_bytes()
