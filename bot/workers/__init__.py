"""The loops a process runs: the intake worker and its metrics, the tracking and refund workers, the leader-only
scheduler and the rules file's hot reload. Wired by bot/wiring/, started by bot/processes/."""
