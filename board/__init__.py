"""The six-stage web board: server-rendered pages over injected services, mounted at /board."""
