"""The six-stage web board (SPEC §10): server-rendered pages over injected services, mounted at /board."""
