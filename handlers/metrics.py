"""The business metrics (Prometheus): notifier, approvals, stalls, refunds. Counted where the act happens, after it
is committed. Under `api --workers N` (and any process with PROMETHEUS_MULTIPROC_DIR) prometheus-client's
multiprocess mode sums them over the processes; see webhooks/metrics.py for the exporter."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

NOTIFY_SENT = Counter("orderhub_notifications_sent_total", "Chat messages delivered", ["platform"])
NOTIFY_RETRIED = Counter("orderhub_notifications_retried_total", "Chat sends retried (429, 5xx, timeouts)",
                         ["platform"])
NOTIFY_FAILED = Counter("orderhub_notifications_failed_total",
                        "Chat sends given up (platform '-': the outbox row as a whole)", ["platform"])
NOTIFY_RESENT = Counter("orderhub_notifications_resent_total",
                        "Sends resent on takeover after an attempt that never finished (outcome: deduplicated by the "
                        "platform, or possible_duplicate)", ["platform", "outcome"])

APPROVALS_REQUESTED = Counter("orderhub_approvals_requested_total", "Approval requests created")
APPROVALS_DECIDED = Counter("orderhub_approvals_decided_total", "Approval decisions recorded", ["outcome"])
APPROVAL_DECISION_SECONDS = Histogram(
    "orderhub_approval_decision_seconds", "Time from an approval request to its decision",
    buckets=(60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 24 * 3600),
)
APPROVALS_ESCALATED = Counter("orderhub_approvals_escalated_total", "Unanswered approval requests escalated")

STALL_ALERTS = Counter("orderhub_stall_alerts_total", "Stall alerts queued, by escalation level", ["level"])
STALL_ACTIONS = Counter("orderhub_stall_actions_total", "Stall alert buttons pressed", ["action"])

# Refunds: counted by handlers/refunds.py after the save commits (a decision once per refund).
REFUNDS_REQUESTED = Counter("orderhub_refunds_requested_total", "Refund requests created")
REFUNDS_DECIDED = Counter("orderhub_refunds_decided_total", "Refund decisions recorded", ["outcome"])
