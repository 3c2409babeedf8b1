"""What the suite's daemons share without depending on each other: small,
stable helpers (durations...). gproxy and heartbeat may import this; it
imports neither."""
