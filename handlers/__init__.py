"""Use cases, written once for every chat platform. They talk to the outside only through the ports."""
