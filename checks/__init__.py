"""Nagios plugins for the gproxy suite: check_gproxy and check_heartbeat.

The plugins read the daemons only through their sockets (gproxy's HAProxy
runtime API, heartbeat's JSON status socket) or through `crm_mon` on a
Pacemaker cluster. They import nothing from `gproxy` or `heartbeat` and no
gevent: Nagios starts one process per check, so start-up cost is the budget.
"""

VERSION = "0.1.0"  # kept equal to pyproject's version (a unit test compares them)
