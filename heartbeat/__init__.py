"""heartbeat: a failover cluster manager for 2 to 16 nodes (Heartbeat + Pacemaker)."""

__version__ = "0.1.0"
