"""Alerts: each event's message (`messages`), their routing and delivery once per run (`tasks`), and the failure
callback every task has (`callback`). Orchestration: it reads the stages' results and the stores, never Airflow."""

from __future__ import annotations

from nightshift.alerting.tasks import alerts_sent

__all__ = ["alerts_sent"]
