"""Inbound chat updates: the Redis queue every platform's route pushes to, and its consumer."""
