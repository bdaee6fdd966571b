"""Every Redis key OrderHub uses, in one place (as arq does), so two features never collide on a name."""

PREFIX = "orderhub:"

INTAKE_STREAM = PREFIX + "intake"
INTAKE_GROUP = "intake-workers"
INTAKE_RETRY_ZSET = PREFIX + "intake:retry"  # failed entries waiting for their backoff to pass
DEAD_LETTER_STREAM = PREFIX + "intake:dead"

SCHEDULER_LEASE = PREFIX + "lease:scheduler"
OUTBOX_WAKEUP = PREFIX + "outbox:wakeup"  # a nudge list; the outbox rows themselves live in the database
TELEGRAM_UPDATES = PREFIX + "telegram:updates"
TELEGRAM_GROUP = "telegram-consumers"
WECOM_EVENTS = PREFIX + "wecom:events"  # decrypted callback XML, waiting for a consumer
WECOM_GROUP = "wecom-consumers"
WECOM_CARD_CODES = PREFIX + "wecom:card:"  # + task_id: the unused response_code that may edit that card
RATE_LIMIT = PREFIX + "ratelimit:"  # + scope:subject
HEARTBEAT = PREFIX + "heartbeat:"  # + component
TRACKING_STREAM = PREFIX + "tracking"  # verified carrier pushes, waiting for the tracking worker
TRACKING_GROUP = "tracking-workers"
TRACKING_RETRY_ZSET = PREFIX + "tracking:retry"
TRACKING_DEAD_STREAM = PREFIX + "tracking:dead"
INTAKE_WORKERS = PREFIX + "intake:workers"  # hash consumer → unix time its loop last turned (liveness)
WECOM_NONCES = PREFIX + "wecom:nonce:"  # + timestamp:nonce of a callback already queued (replay guard)
REFUND_STREAM = PREFIX + "refunds"  # verified Taobao refund pushes, waiting for the refund intake worker
REFUND_GROUP = "refund-workers"
REFUND_RETRY_ZSET = PREFIX + "refunds:retry"
REFUND_DEAD_STREAM = PREFIX + "refunds:dead"
