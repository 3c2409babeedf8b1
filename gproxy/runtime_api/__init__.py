"""gproxy's stats socket: HAProxy 2.6's runtime API (the "CLI").

framing   sans-IO line framing, prompt mode, payloads
commands  the command table, levels, HAProxy's help and error texts
stat_csv  `show stat` (CSV and typed)
reports   `show info`, `show servers state`, `show backend`, `show sess`, `show errors`
server    the gevent unix-socket server, one per `global.stats_socket`
client    `gproxy ctl`: send commands, print answers
"""
