"""Facts about the machine swarmai runs on that decide how a stack is rendered."""

from __future__ import annotations

from pathlib import Path

from swarmai.spec import Stack


def kernel_has_ipvs(proc: Path = Path("/proc")) -> bool:
    """True when this kernel has IPVS, which Swarm's routing mesh and VIPs need.

    /proc/net/ip_vs exists once the ip_vs module is loaded or built in.
    """
    if (proc / "net" / "ip_vs").exists():
        return True
    modules = proc / "modules"
    try:
        return any(line.startswith("ip_vs ") for line in modules.read_text().splitlines())
    except OSError:
        return False


def resolve_ipvs(stack: Stack, override: bool | None = None) -> bool:
    """The IPVS setting to render with: an explicit override, the spec, or a probe."""
    if override is not None:
        return override
    if stack.network.ipvs == "auto":
        return kernel_has_ipvs()
    return bool(stack.network.ipvs)
