"""The SNMP notifier: daemon events -> GPROXY-SUITE-MIB traps and notify commands.

Unlike the plugins of `checks`, this package runs inside gproxy and heartbeat
(DESIGN.md: they use `checks` only for it, and load it only when `[snmp]` is
configured). `mapping` is pure (event -> trap values), `sender` sends with
pysnmp from its own thread, `notify` runs notify commands from another,
`notifier.attach()` wires them to a daemon's event bus. The `[snmp]` table
itself is validated by gsuite.snmp_config, which both config loaders call.
"""
