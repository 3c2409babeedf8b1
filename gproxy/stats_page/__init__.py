"""What gproxy answers itself on a frontend: HAProxy's statistics page and
its native Prometheus exporter.

settings    the `stats` and `prometheus` tables as frozen values
request     pure: URI modifiers, basic auth, the admin form, every reply
html        pure: the HTML page (one table per proxy, a row per server)
prometheus  pure: text exposition 0.0.4, HAProxy's metric names under `gproxy_`
routes      the gevent glue: `LocalRoutes.match(head)` and the handlers that
            read a request body and write the reply on the client socket

The figures come from the runtime API's rows (`runtime_api.stat_csv`), so
the page, its `;csv` export, the metrics and `show stat` never disagree.
"""
