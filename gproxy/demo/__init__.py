"""The demo: real processes (origin servers, the proxy) started by `make demo` and the end-to-end tests."""
