"""Alerts: sensors that tell people about low stock, new high-risk payments, failed runs, failed
blocking checks and refused challengers, in ``prod.alerts``, the sensor log and every destination the
environment configures (a Slack-compatible webhook, SMTP e-mail)."""
