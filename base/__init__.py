"""What every service shares, below them all: settings, logging, tracing, serving over HTTP,
health endpoints and broker metrics. It depends on ``events`` only."""
