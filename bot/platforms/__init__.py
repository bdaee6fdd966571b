"""The chat platforms: what one is (protocol.py), the list of them (registry.py), each adapter in its own package
(telegram/, wecom/), the consumer of their inbound queues (inbound/) and the sending of a split message's later parts."""
