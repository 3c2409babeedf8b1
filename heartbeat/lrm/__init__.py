"""The local resource manager: runs OCF and LSB agents for this node.

- `codes`: OCF/LSB return codes, the LSB mapping, recovery classes (pure);
- `lifecycle`: the resource lifecycle state table (pure);
- `runner`: one agent action as a subprocess, with its environment and timeout;
- `lrm`: per-resource serialised actions, probes and recurring monitors.
"""

from heartbeat.lrm.codes import LsbRc, LsbStatusRc, OcfRc, Recovery, describe, is_failure, lsb_to_ocf, recovery
from heartbeat.lrm.lifecycle import LifecycleEvent, process_event
from heartbeat.lrm.lrm import LocalResourceManager
from heartbeat.lrm.runner import ActionResult, agent_path, agents_dir, build_environment, run_action

__all__ = [
    "ActionResult", "LifecycleEvent", "LocalResourceManager", "LsbRc", "LsbStatusRc", "OcfRc", "Recovery",
    "agent_path", "agents_dir", "build_environment", "describe", "is_failure", "lsb_to_ocf", "process_event",
    "recovery", "run_action",
]
